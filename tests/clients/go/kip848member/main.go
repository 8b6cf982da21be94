// One member of a consumer group on franz-go, for Moldau's group tests: with
// kgo.ServerSideBalancer() the group runs KIP-848's protocol (ConsumerGroupHeartbeat).
// The same protocol as tests/clients/kip848/GroupMember.java: JSON lines on stdout for
// assigned/revoked/lost partitions (wall-clock ms), the first offset consumed per partition
// after each assignment and a running count; commits after every poll; leaves when stdin closes.
//
// usage: kip848member <bootstrap> <group> <protocol> <topics-or-regex> [regex]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var mu sync.Mutex

func emit(event string, fields map[string]any) {
	mu.Lock()
	defer mu.Unlock()
	out := map[string]any{"ev": event, "t": time.Now().UnixMilli()}
	for k, v := range fields {
		out[k] = v
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}

func names(partitions map[string][]int32) map[string]any {
	list := [][]any{}
	for topic, parts := range partitions {
		for _, p := range parts {
			list = append(list, []any{topic, p})
		}
	}
	return map[string]any{"partitions": list}
}

func main() {
	bootstrap, group, protocol, subscription := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	regex := len(os.Args) > 5 && os.Args[5] == "regex"
	fresh := map[string]map[int32]bool{}
	var freshMu sync.Mutex
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.ConsumerGroup(group),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, p map[string][]int32) {
			freshMu.Lock()
			for topic, parts := range p {
				if fresh[topic] == nil {
					fresh[topic] = map[int32]bool{}
				}
				for _, part := range parts {
					fresh[topic][part] = true
				}
			}
			freshMu.Unlock()
			emit("assigned", names(p))
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, p map[string][]int32) {
			emit("revoked", names(p))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, p map[string][]int32) { emit("lost", names(p)) }),
	}
	if protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	if regex {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(subscription))
	} else {
		opts = append(opts, kgo.ConsumeTopics(strings.Split(subscription, ",")...))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	emit("started", nil)
	count := 0
	for ctx.Err() == nil {
		pollCtx, pollCancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := client.PollFetches(pollCtx)
		pollCancel()
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			freshMu.Lock()
			if fresh[r.Topic][r.Partition] {
				delete(fresh[r.Topic], r.Partition)
				freshMu.Unlock()
				emit("first", map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset})
			} else {
				freshMu.Unlock()
			}
			n++
		})
		if n > 0 {
			count += n
			if err := client.CommitUncommittedOffsets(context.Background()); err != nil {
				emit("commit_error", map[string]any{"error": err.Error()})
			}
			emit("count", map[string]any{"n": count})
		}
	}
	client.Close()
	emit("closed", nil)
}
