// The client-compatibility workload (tests/integration/workload.py) with franz-go.
//
//	franz-workload BOOTSTRAP create TOPIC PARTITIONS
//	franz-workload BOOTSTRAP produce TOPIC FIRST COUNT CODEC   (none, gzip, snappy, lz4, zstd)
//	franz-workload BOOTSTRAP consume TOPIC COUNT GROUP         -> one JSON object per record
//	franz-workload BOOTSTRAP offsets TOPIC TIMESTAMP_MS        -> {"latest": [...], "by_time": [...]}
//
// Messages are workload.py's message(i); binary fields are printed as base64 (Go's []byte JSON).
// franz-go negotiates the newest version of every API the broker advertises and is idempotent
// by default, so it exercises the top of each version range.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const baseTimestampMs = int64(1700000000000)

type header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

type consumed struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   []header `json:"headers"`
	Timestamp int64    `json:"timestamp"`
}

type partitionOffset struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

func message(topic string, i int) *kgo.Record {
	value := []byte(fmt.Sprintf("value-%d-", i))
	for n := 0; n < i%50; n++ {
		value = append(value, byte(n))
	}
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(fmt.Sprintf("key-%d", i%97)),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: "seq", Value: []byte(strconv.Itoa(i))},
			{Key: "source", Value: []byte("moldau-test")},
		},
		Timestamp: time.UnixMilli(baseTimestampMs + int64(i)),
	}
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "franz-go workload failed: %v\n", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: franz-workload BOOTSTRAP COMMAND TOPIC ..."))
	}
	bootstrap, command, topic, args := os.Args[1], os.Args[2], os.Args[3], os.Args[4:]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ClientID("franz-go-workload")}
	var err error
	switch command {
	case "create":
		err = create(ctx, opts, topic, atoi(args[0]))
	case "produce":
		err = produce(ctx, opts, topic, atoi(args[0]), atoi(args[1]), args[2])
	case "consume":
		err = consume(ctx, opts, topic, atoi(args[0]), args[1])
	case "offsets":
		err = offsets(ctx, opts, topic, int64(atoi(args[0])))
	default:
		err = fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		fail(err)
	}
}

func create(ctx context.Context, opts []kgo.Opt, topic string, partitions int) error {
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	responses, err := kadm.NewClient(client).CreateTopics(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return err
	}
	return responses.Error()
}

func produce(ctx context.Context, opts []kgo.Opt, topic string, first, count int, codecName string) error {
	opts = append(opts, kgo.ProducerBatchCompression(codec(codecName)), kgo.ProducerLinger(5*time.Millisecond))
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	records := make([]*kgo.Record, 0, count)
	for i := first; i < first+count; i++ {
		records = append(records, message(topic, i))
	}
	return client.ProduceSync(ctx, records...).FirstErr()
}

func consume(ctx context.Context, opts []kgo.Opt, topic string, count int, group string) error {
	opts = append(opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	out := json.NewEncoder(os.Stdout)
	seen := 0
	for seen < count {
		fetches := client.PollRecords(ctx, count-seen)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consumed %d of %d: %w", seen, count, err)
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		if fetchErr != nil {
			return fetchErr
		}
		for _, r := range fetches.Records() {
			headers := make([]header, 0, len(r.Headers))
			for _, h := range r.Headers {
				headers = append(headers, header{h.Key, h.Value})
			}
			if err := out.Encode(consumed{r.Partition, r.Offset, r.Key, r.Value, headers, r.Timestamp.UnixMilli()}); err != nil {
				return err
			}
			seen++
		}
	}
	// Commit exactly what was printed, then leave the group.
	if err := client.CommitUncommittedOffsets(ctx); err != nil {
		return err
	}
	client.LeaveGroup()
	return nil
}

func offsets(ctx context.Context, opts []kgo.Opt, topic string, timestampMs int64) error {
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	latest, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	byTime, err := admin.ListOffsetsAfterMilli(ctx, timestampMs, topic)
	if err != nil {
		return err
	}
	collect := func(listed kadm.ListedOffsets) ([]partitionOffset, error) {
		var list []partitionOffset
		var firstErr error
		listed.Each(func(o kadm.ListedOffset) {
			if o.Err != nil && firstErr == nil {
				firstErr = o.Err
			}
			list = append(list, partitionOffset{o.Partition, o.Offset})
		})
		sort.Slice(list, func(a, b int) bool { return list[a].Partition < list[b].Partition })
		return list, firstErr
	}
	l, err := collect(latest)
	if err != nil {
		return err
	}
	b, err := collect(byTime)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string][]partitionOffset{"latest": l, "by_time": b})
}
