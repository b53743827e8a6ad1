package consumer

import (
	"context"
	"errors"

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
