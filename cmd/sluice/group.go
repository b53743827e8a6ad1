package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// instanceIDs returns the static group.instance.id of each of the n members
// of this process: <command>.<id>.<i>, where id is --instance-id ("host":
// this host's name), or nil for dynamic membership (--instance-id "").
//
// The ids are stable across restarts on one host, which is their point: a
// run killed (SIGKILL, OOM) leaves its members' sessions open in the group,
// and the next run takes their places at once instead of waiting for them
// to time out. The same ids on one host also mean that two runs of one
// group started there at the same time share them: the later one fences
// the earlier, which stops with exit 1 (FENCED_INSTANCE_ID). Two runs of
// one window at once were never useful; give each a distinct --instance-id,
// or "", to run them side by side anyway.
func instanceIDs(command, id string, n int) ([]string, error) {
	if id == "" {
		return nil, nil
	}
	if id == "host" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return nil, usagef("--instance-id host: this host's name is unknown (%v); give an id, or \"\" for dynamic membership", err)
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
			return nil, usagef("--instance-id %q: too long for a Kafka group.instance.id (249 characters with %q)", id, command+"..N")
		}
	}
	return ids, nil
}

// announceGroup says, before this process's members join, which members the
// group already holds: members of an earlier run whose instance ids are ours
// (a killed run of this host) are taken over at once; any others, live or
// dead, make the join wait until they rejoin or their sessions expire. It
// only logs: a group it cannot describe is the members' to report.
func (s *stage) announceGroup(ctx context.Context, ours []string) {
	ctx, cancel := context.WithTimeout(ctx, s.o.kafkaTimeout)
	defer cancel()
	cl, err := kgo.NewClient(s.o.kafkaClient()...)
	if err != nil {
		return
	}
	defer cl.Close()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, s.o.group)
	if err == nil {
		err = gs.Error()
	}
	if err != nil {
		s.log.Debug("group not described before joining", "group", s.o.group, "err", err)
		return
	}
	var takeOver, others []string
	for _, m := range gs[s.o.group].Members {
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
		s.log.Info("group holds members of an earlier run with this process's instance ids; taking their places at once (a run of them still alive stops, fenced)",
			"group", s.o.group, "instance_ids", takeOver)
	}
	if len(others) > 0 {
		s.log.Warn("group holds members of an earlier run or another process; joining waits until they rejoin, or until their sessions time out if they are dead (45 s)",
			"group", s.o.group, "members", others)
	}
}
