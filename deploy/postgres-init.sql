-- One database per (context, shard). Add a line per tenant shard.
CREATE DATABASE visits_default;
CREATE DATABASE visits_tenant_a;
CREATE DATABASE visits_tenant_b;
CREATE DATABASE billing_default;
