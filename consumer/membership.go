package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// close leaves the group and closes the client, within DialTimeout. kgo's
// Close leaves the group only as a dynamic member: a static one keeps its
// place for a restart (KIP-345), so it leaves here, by its member and
// instance id, once Close has stopped its group loop (a loop still running,
// in a rebalance, would join again after the leave and leave a member behind
// that no process runs), through a client of its own. A member that was
// fenced by another with its instance id does not: the place is no longer
// its own.
func (c *Consumer) close(ctx context.Context, runErr error) {
	if c.cfg.InstanceID == "" {
		c.cl.CloseAllowingRebalance()
		return
	}
	before, _ := c.cl.GroupMetadata()
	c.cl.CloseAllowingRebalance() // a rebalance blocked by the last poll would block Close for good
	memberID, _ := c.cl.GroupMetadata()
	if memberID == "" {
		memberID = before
	}
	if memberID == "" || errors.Is(runErr, kerr.FencedInstanceID) {
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.DialTimeout)
	defer cancel()
	err := c.leave(lctx, memberID)
	if err != nil {
		c.log.Warn("consumer: static member could not leave the group; its partitions wait for its session to time out or for a restart with its instance id",
			"group", c.cfg.Group, "instance_id", c.cfg.InstanceID, "err", err)
	}
}

// leave sends the LeaveGroup of this static member through a new client.
func (c *Consumer) leave(ctx context.Context, memberID string) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...), kgo.DialTimeout(c.cfg.DialTimeout)}, c.cfg.Conn...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = c.cfg.Group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID, lm.InstanceID = memberID, kmsg.StringPtr(c.cfg.InstanceID)
	lm.Reason = kmsg.StringPtr("sluice member stopping")
	req.Members = append(req.Members, lm)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, m := range resp.Members {
		if err := kerr.ErrorForCode(m.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// InstanceIDs returns the static group.instance.id of each of the n members
// of this process: <command>.<id>.<i>, where id is --instance-id ("host":
// this host's name), or nil for dynamic membership (--instance-id "").
// A member takes its id as Config.InstanceID.
//
// The ids are stable across restarts on one host, which is their point: a
// run killed (SIGKILL, OOM) leaves its members' sessions open in the group,
// and the next run takes their places at once instead of waiting for them
// to time out. The same ids on one host also mean that two runs of one
// group started there at the same time share them: the later one fences
// the earlier, which stops with exit 1 (FENCED_INSTANCE_ID). Two runs of
// one window at once were never useful; give each a distinct --instance-id,
// or "", to run them side by side anyway.
func InstanceIDs(command, id string, n int) ([]string, error) {
	if id == "" {
		return nil, nil
	}
	if id == "host" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, fmt.Errorf("--instance-id host: this host's name is unknown (%v); give an id, or \"\" for dynamic membership", err)
		}
		id = h
	}
	// Kafka allows ASCII letters, digits, '.', '_' and '-' in an instance id.
	clean := strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, id)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s.%s.%d", command, clean, i+1)
		if len(ids[i]) > 249 {
			return nil, fmt.Errorf("--instance-id %q: too long for a Kafka group.instance.id (249 characters with %q)", id, command+"..N")
		}
	}
	return ids, nil
}

// AnnounceGroup logs, before this process's members join group, which
// members the group already holds: members of an earlier run whose
// instance ids are ours (a killed run of this host) are taken over at
// once; any others, live or dead, make the join wait until they rejoin or
// their sessions expire. It only logs: a group it cannot describe is the
// members' to report.
func AnnounceGroup(ctx context.Context, adm *kadm.Client, group string, ours []string, log *slog.Logger) {
	gs, err := adm.DescribeGroups(ctx, group)
	if err == nil {
		err = gs.Error()
	}
	if err != nil {
		log.Debug("group not described before joining", "group", group, "err", err)
		return
	}
	var takeOver, others []string
	for _, m := range gs[group].Members {
		if m.InstanceID != nil && slices.Contains(ours, *m.InstanceID) {
			takeOver = append(takeOver, *m.InstanceID)
			continue
		}
		who := m.ClientID + "@" + m.ClientHost
		if m.InstanceID != nil {
			who = *m.InstanceID + " (" + who + ")"
		}
		others = append(others, who)
	}
	if len(takeOver) > 0 {
		log.Info("group holds members of an earlier run with this process's instance ids; taking their places at once (a run of them still alive stops, fenced)",
			"group", group, "instance_ids", takeOver)
	}
	if len(others) > 0 {
		log.Warn("group holds members of an earlier run or another process; joining waits until they rejoin, or until their sessions time out if they are dead (45 s)",
			"group", group, "members", others)
	}
}
