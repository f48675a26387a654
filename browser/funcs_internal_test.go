package browser

import "testing"

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		`connect postgres://billing:s3cret@db:5432/billing_a: refused`: `connect postgres://…@db:5432/billing_a: refused`,
		`nats://token@nats:4222 unreachable`:                           `nats://…@nats:4222 unreachable`,
		`no credentials here: a@b`:                                     `no credentials here: a@b`,
		`postgres://u:p@ss@h/db failed`:                                `postgres://…@h/db failed`,
		`host=db user=app password=s3cret dbname=x`:                    `host=db user=app password=… dbname=x`,
		`password='a b' host=db`:                                       `password=… host=db`,
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShort(t *testing.T) {
	if got := short("01a25145-02b3-7500-bb86-d388bd7c4ace"); got != "…bd7c4ace" {
		t.Errorf("short = %q", got)
	}
	if got := short("order-77"); got != "order-77" {
		t.Errorf("short of a short id = %q", got)
	}
}
