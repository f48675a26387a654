-- One database per (context, shard), each with a role of its own that owns
-- it: a DSN for one tenant's shard cannot connect to another's. Migrations
-- and handlers both connect as the shard's role (it creates the store's
-- schema and the application's tables, and writes them).
-- Add three lines per tenant shard; the password is the compose set-up's.
CREATE ROLE visits_default LOGIN PASSWORD 'switchyard';
CREATE DATABASE visits_default OWNER visits_default;
REVOKE CONNECT, TEMPORARY ON DATABASE visits_default FROM PUBLIC;

CREATE ROLE visits_tenant_a LOGIN PASSWORD 'switchyard';
CREATE DATABASE visits_tenant_a OWNER visits_tenant_a;
REVOKE CONNECT, TEMPORARY ON DATABASE visits_tenant_a FROM PUBLIC;

CREATE ROLE visits_tenant_b LOGIN PASSWORD 'switchyard';
CREATE DATABASE visits_tenant_b OWNER visits_tenant_b;
REVOKE CONNECT, TEMPORARY ON DATABASE visits_tenant_b FROM PUBLIC;

CREATE ROLE billing_default LOGIN PASSWORD 'switchyard';
CREATE DATABASE billing_default OWNER billing_default;
REVOKE CONNECT, TEMPORARY ON DATABASE billing_default FROM PUBLIC;
