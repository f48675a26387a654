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
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// PermissionError is a subject the connection's NATS user may not use,
// and a part of Switchyard needs: found at the part's start.
type PermissionError struct {
	User    string // as the server names it ("" when it did not say)
	Part    string // "relay of visits/tenant-a"
	Action  string // "publish" or "subscribe"
	Subject string
	Denied  string // the deny rule that refuses it; "" when no allow rule grants it
	// Inbox: the subject is the connection's reply inbox, which the
	// server refused; every reply comes there.
	Inbox bool
}

func (e *PermissionError) Error() string {
	user, why := "the NATS user", "no allow rule grants it"
	if e.User != "" {
		user = "NATS user " + strconv.Quote(e.User)
	}
	switch {
	case e.Denied != "":
		why = "deny rule " + e.Denied + " refuses it"
	case e.Inbox:
		why = "the server refused it, and every reply comes there"
	}
	msg := fmt.Sprintf("bus: %s may not %s to %s, which the %s needs (%s): grant it in the user's permissions (see go doc bus, Permissions)",
		user, e.Action, e.Subject, e.Part, why)
	if e.Inbox {
		msg += ", or set the inbox prefix the user may subscribe to (Security.InboxPrefix, SWITCHYARD_NATS_INBOX_PREFIX)"
	}
	return msg
}

// Check checks, at the start of part (a name for errors: "relay of
// visits/tenant-a"), that the connection's NATS user may publish and
// subscribe to every subject of p and to the connection's own (its
// inbox): the first one it may not is a *PermissionError. The user's
// permissions are asked for (UserInfoSubject) until the server has
// answered once. When it cannot answer (the user may not ask, or the
// server has no system account), Check logs so once and returns nil; a
// missing permission then shows later, as a refused subject in the log.
func (c *Conn) Check(ctx context.Context, part string, p Permissions) error {
	info, refused := c.grants.of(ctx, c)
	if refused != nil {
		e := *refused
		e.Part = part
		return &e
	}
	if info == nil || info.Permissions == nil {
		return nil
	}
	p = p.Add(ConnPermissions(c.nc.Opts.InboxPrefix))
	for _, a := range []struct {
		action   string
		sp       *server.SubjectPermission
		subjects []string
	}{{"publish", info.Permissions.Publish, p.Publish}, {"subscribe", info.Permissions.Subscribe, p.Subscribe}} {
		for _, s := range a.subjects {
			if ok, denied := allows(a.sp, s, a.action == "subscribe"); !ok {
				return &PermissionError{User: info.name(), Part: part, Action: a.action, Subject: s, Denied: denied}
			}
		}
	}
	return nil
}

// allows says whether sp lets every subject subject matches through, and
// else the deny rule in the way ("" when no allow rule covers it). No
// permission, or no allow rule, allows everything not denied. A deny rule
// refuses a publish it overlaps at all; a subscription only when it covers
// it whole (the server drops the denied messages from the rest).
func allows(sp *server.SubjectPermission, subject string, subscribe bool) (ok bool, denied string) {
	if sp == nil {
		return true, ""
	}
	if len(sp.Allow) > 0 && !slices.ContainsFunc(sp.Allow, func(a string) bool { return server.SubjectMatchesFilter(subject, a) }) {
		return false, ""
	}
	for _, d := range sp.Deny {
		if subscribe && server.SubjectMatchesFilter(subject, d) || !subscribe && server.SubjectsCollide(subject, d) {
			return false, d
		}
	}
	return true, ""
}

// userInfo is what the server says of the connection's user.
type userInfo struct {
	User        string              `json:"user"`
	UserName    string              `json:"user_name"` // a JWT user's name
	Permissions *server.Permissions `json:"permissions"`
}

func (u *userInfo) name() string {
	if u.UserName != "" {
		return u.UserName
	}
	return u.User
}

// grants is what the server said of the connection's user, once it said
// it: its permissions, or that it refused the reply inbox, or that it
// cannot say.
type grants struct {
	mu      sync.Mutex
	known   bool
	info    *userInfo
	refused *PermissionError
}

// errCannotAsk: the server will not say (the user may not ask, or there
// is no system account to answer).
var errCannotAsk = errors.New("the server cannot tell this user's permissions")

// of returns what the server says, asking it when it has not said yet; a
// question that timed out or was cancelled is asked again next time.
func (g *grants) of(ctx context.Context, c *Conn) (*userInfo, *PermissionError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.known {
		return g.info, g.refused
	}
	info, refused, err := askUserInfo(ctx, c.nc)
	switch {
	case err == nil:
		g.info, g.refused, g.known = info, refused, true
	case errors.Is(err, errCannotAsk):
		g.known = true
		c.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "nats: cannot check this user's permissions at start; a missing one shows later, as a refused subject",
			slog.String("url", c.url), slog.String("grant", "publish "+UserInfoSubject), slog.Any("error", err))
	default:
		c.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "nats: asking for this user's permissions failed; asking again next time", slog.Any("error", err))
	}
	return g.info, g.refused
}

// violation is how the server says it refused a subject.
var violation = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) to "([^"]+)"`)

// refusedLast reports whether the server's last refusal on nc was of
// action (Publish or Subscription) on subject.
func refusedLast(nc *nats.Conn, action, subject string) bool {
	m := violation.FindStringSubmatch(fmt.Sprint(nc.LastError()))
	return m != nil && m[1] == action && m[2] == subject
}

// userInfoTimeout bounds the wait for the server's answer.
const userInfoTimeout = 2 * time.Second

// askUserInfo asks the server for the user's permissions on an inbox of
// its own, and flushes before waiting: a refusal of the inbox or of the
// question comes before the flush's answer, so neither waits for a
// timeout.
func askUserInfo(ctx context.Context, nc *nats.Conn) (*userInfo, *PermissionError, error) {
	ctx, cancel := context.WithTimeout(ctx, userInfoTimeout)
	defer cancel()
	reply := nc.NewInbox()
	sub, err := nc.SubscribeSync(reply)
	if err != nil {
		return nil, nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // done with it either way
	if err := nc.PublishRequest(UserInfoSubject, reply, nil); err != nil {
		return nil, nil, err
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return nil, nil, err
	}
	if refusedLast(nc, "Subscription", reply) {
		return nil, &PermissionError{Action: "subscribe", Subject: inbox(nc.Opts.InboxPrefix) + ".>", Inbox: true}, nil
	}
	if refusedLast(nc, "Publish", UserInfoSubject) {
		return nil, nil, fmt.Errorf("%w: it may not publish to %s", errCannotAsk, UserInfoSubject)
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return nil, nil, err
	}
	if m.Header.Get("Status") == "503" {
		return nil, nil, fmt.Errorf("%w: no responders (the server has no system account)", errCannotAsk)
	}
	var resp struct {
		Data  *userInfo        `json:"data"`
		Error *server.ApiError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Error != nil || resp.Data == nil {
		return nil, nil, fmt.Errorf("%w: a bad answer: %v %v", errCannotAsk, err, resp.Error)
	}
	return resp.Data, nil, nil
}
