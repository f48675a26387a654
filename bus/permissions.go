package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Permissions are the NATS subjects a part of Switchyard publishes to and
// subscribes to: what its NATS user must be allowed. Wildcards mean every
// subject they match.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Add returns p and q together, sorted, each subject once.
func (p Permissions) Add(q Permissions) Permissions {
	merge := func(a, b []string) []string {
		out := slices.Concat(a, b)
		slices.Sort(out)
		return slices.Compact(out)
	}
	return Permissions{Publish: merge(p.Publish, q.Publish), Subscribe: merge(p.Subscribe, q.Subscribe)}
}

// UserInfoSubject is where a connection asks the server for its user's
// permissions; a part checks them at start when its user may publish to it.
const UserInfoSubject = "$SYS.REQ.USER.INFO"

// ConnPermissions is what every part needs of its connection: to receive
// replies on the inbox (inboxPrefix, "" for _INBOX) and to ask for its
// user's permissions.
func ConnPermissions(inboxPrefix string) Permissions {
	return Permissions{Publish: []string{UserInfoSubject}, Subscribe: []string{inbox(inboxPrefix) + ".>"}}
}

func inbox(prefix string) string {
	if prefix == "" {
		return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	return prefix
}

// RelayPermissions is what the relay of one store needs: its stream's
// provisioning, publishing the store's events and their wake-ups, and
// hearing the wake-ups.
func RelayPermissions(contextName, shard string) Permissions {
	s := StreamName(contextName)
	wake := wakeSubject(contextName, shard)
	return Permissions{
		Publish: []string{
			"$JS.API.STREAM.CREATE." + s, "$JS.API.STREAM.INFO." + s,
			"sw." + contextName + "." + shard + ".>", wake,
		},
		Subscribe: []string{wake},
	}.Add(Permissions{})
}

// ForwardPermissions is what Conn.ForwardCommits needs for one store.
func ForwardPermissions(contextName, shard string) Permissions {
	return Permissions{Publish: []string{wakeSubject(contextName, shard)}}
}

// KVPermissions is what creating, reading and writing the key-value
// bucket needs, and listing its keys through an ordered consumer (which
// asks for flow control).
func KVPermissions(bucket string) Permissions {
	s := "KV_" + bucket
	return Permissions{Publish: []string{
		"$JS.API.INFO", "$JS.API.STREAM.CREATE." + s, "$JS.API.STREAM.UPDATE." + s, "$KV." + bucket + ".>",
		"$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.DELETE." + s + ".*", "$JS.FC." + s + ".>",
	}}.Add(KVReadPermissions(bucket))
}

// KVReadPermissions is what opening the key-value bucket and getting its
// keys needs, and listing them from the stream's info: nothing that
// changes it.
func KVReadPermissions(bucket string) Permissions {
	s := "KV_" + bucket
	return Permissions{Publish: []string{"$JS.API.STREAM.INFO." + s, "$JS.API.DIRECT.GET." + s + ".>"}}.Add(Permissions{})
}

// TailPermissions is what following the context's stream needs (an
// ordered consumer, as cli's tail and the browser's live tail use):
// creating ephemeral consumers on it, which NATS's permissions cannot
// tell from durable ones.
func TailPermissions(contextName string) Permissions {
	s := StreamName(contextName)
	return Permissions{Publish: []string{
		"$JS.API.STREAM.INFO." + s, "$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.INFO." + s + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".*", "$JS.API.CONSUMER.DELETE." + s + ".*",
	}}.Add(Permissions{})
}

// PermissionError is a subject the connection's NATS user may not use,
// and a part of Switchyard needs: found at the part's start.
type PermissionError struct {
	User    string // as the server knows it
	Part    string // "relay of visits/tenant-a"
	Action  string // "publish" or "subscribe"
	Subject string
	Denied  string // the deny rule that refuses it; "" when no allow rule grants it
}

func (e *PermissionError) Error() string {
	user, why := "NATS user "+strconv.Quote(e.User), "no allow rule grants it"
	switch {
	case e.Denied != "":
		why = "deny rule " + e.Denied + " refuses it"
	case e.User == "": // the reply inbox: the server said no more
		user, why = "the NATS user", "the server refused it: every reply comes there"
	}
	msg := fmt.Sprintf("bus: %s may not %s to %s, which the %s needs (%s): grant it in the user's permissions (see go doc bus, Permissions)",
		user, e.Action, e.Subject, e.Part, why)
	if e.User == "" {
		msg += ", or set the inbox prefix the user may subscribe to (Security.InboxPrefix, SWITCHYARD_NATS_INBOX_PREFIX)"
	}
	return msg
}

// userInfo is what the server says of the connection's user.
type userInfo struct {
	User        string              `json:"user"`
	Permissions *server.Permissions `json:"permissions"`
}

// grants is the connection's user's permissions, asked for once.
type grants struct {
	once    sync.Once
	info    *userInfo        // nil: unknown (the server did not say)
	refused *PermissionError // the server refused the question's reply inbox
}

// Check checks, at the start of part (a name for errors: "relay of
// visits/tenant-a"), that the connection's NATS user may publish and
// subscribe to every subject of p and the connection's own (its inbox):
// the first one it may not is a *PermissionError. The user's permissions
// are asked for once per Conn (UserInfoSubject); when the server does not
// answer (its user may not ask, or it has no system account) Check logs
// once that it cannot tell and returns nil.
func (c *Conn) Check(ctx context.Context, part string, p Permissions) error {
	info := c.userInfo(ctx)
	if r := c.grants.refused; r != nil {
		return &PermissionError{Part: part, Action: r.Action, Subject: r.Subject}
	}
	if info == nil || info.Permissions == nil {
		return nil
	}
	p = p.Add(ConnPermissions(c.nc.Opts.InboxPrefix))
	check := func(action string, sp *server.SubjectPermission, subjects []string) error {
		for _, s := range subjects {
			if ok, denied := allows(sp, s); !ok {
				return &PermissionError{User: info.User, Part: part, Action: action, Subject: s, Denied: denied}
			}
		}
		return nil
	}
	return errors.Join(check("publish", info.Permissions.Publish, p.Publish), check("subscribe", info.Permissions.Subscribe, p.Subscribe))
}

// allows says whether sp lets every subject subject matches through, and
// else the deny rule in the way ("" when no allow rule covers it). No
// permission, or no allow rule, allows everything not denied.
func allows(sp *server.SubjectPermission, subject string) (ok bool, denied string) {
	if sp == nil {
		return true, ""
	}
	if len(sp.Allow) > 0 && !slices.ContainsFunc(sp.Allow, func(a string) bool { return server.SubjectMatchesFilter(subject, a) }) {
		return false, ""
	}
	for _, d := range sp.Deny {
		if server.SubjectsCollide(subject, d) {
			return false, d
		}
	}
	return true, ""
}

// violation is how the server says it refused a subject.
var violation = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) to "([^"]+)"`)

// userInfoTimeout bounds the wait for the user's permissions: a server
// that refuses the question does not answer it.
const userInfoTimeout = 2 * time.Second

func (c *Conn) userInfo(ctx context.Context) *userInfo {
	c.grants.once.Do(func() {
		info, err := askUserInfo(ctx, c.nc)
		if m := violation.FindStringSubmatch(fmt.Sprint(c.nc.LastError())); err != nil && m != nil && m[1] == "Subscription" {
			// Every reply comes on the inbox: nothing can work.
			c.grants.refused = &PermissionError{Action: "subscribe", Subject: m[2]}
			return
		}
		if err != nil {
			c.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "nats: cannot check this user's permissions at start; a missing one shows later, as a refused subject",
				slog.String("url", c.url), slog.String("grant", "publish "+UserInfoSubject), slog.Any("error", err))
			return
		}
		c.grants.info = info
	})
	return c.grants.info
}

func askUserInfo(ctx context.Context, nc *nats.Conn) (*userInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, userInfoTimeout)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, UserInfoSubject, nil)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data  *userInfo        `json:"data"`
		Error *server.ApiError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("user info: %w", err)
	}
	if resp.Error != nil || resp.Data == nil {
		return nil, fmt.Errorf("user info: %v", resp.Error)
	}
	return resp.Data, nil
}

// Config renders p as a NATS server configuration's permissions block,
// to paste under a user: permissions = { publish = { allow = [...] } ... }.
func (p Permissions) Config() string {
	list := func(subjects []string) string {
		quoted := make([]string, len(subjects))
		for i, s := range subjects {
			quoted[i] = "    " + strconv.Quote(s)
		}
		return "[\n" + strings.Join(quoted, ",\n") + "\n  ]"
	}
	return "permissions = {\n  publish = " + list(p.Publish) + "\n  subscribe = " + list(p.Subscribe) + "\n}\n"
}
