// Package workload is the client-compatibility workload (tests/integration/workload.py) for the
// Go clients: the messages, the command line and the JSON every client program prints. Each
// program under tests/clients/go/ implements Client with its library and calls Main:
//
//	<client>-workload BOOTSTRAP create TOPIC PARTITIONS
//	<client>-workload BOOTSTRAP produce TOPIC FIRST COUNT CODEC   (none, gzip, snappy, lz4, zstd)
//	<client>-workload BOOTSTRAP consume TOPIC COUNT GROUP         -> one JSON object per record
//	<client>-workload BOOTSTRAP offsets TOPIC TIMESTAMP_MS        -> {"latest": [...], "by_time": [...]}
//
// Binary fields are printed as base64 (Go's []byte JSON).
package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

const baseTimestampMs = int64(1700000000000)

// Header is a record header as printed.
type Header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Consumed is one consumed record as printed.
type Consumed struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   []Header `json:"headers"`
	Timestamp int64    `json:"timestamp"`
}

// PartitionOffset is one partition's answer to a ListOffsets query.
type PartitionOffset struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// Message is workload.py's message(i): key "key-<i % 97>", value "value-<i>-" followed by the
// bytes 0..(i % 50)-1, headers seq=<i> and source=moldau-test, timestamp BASE + i.
type Message struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

func NewMessage(i int) Message {
	value := []byte(fmt.Sprintf("value-%d-", i))
	for n := 0; n < i%50; n++ {
		value = append(value, byte(n))
	}
	return Message{
		Key:       []byte(fmt.Sprintf("key-%d", i%97)),
		Value:     value,
		Headers:   []Header{{"seq", []byte(strconv.Itoa(i))}, {"source", []byte("moldau-test")}},
		Timestamp: time.UnixMilli(baseTimestampMs + int64(i)),
	}
}

// Client is one library's way of doing the four commands.
type Client interface {
	Create(ctx context.Context, topic string, partitions int) error
	// Produce sends messages first..first+count-1 with the named codec and waits for their acks.
	Produce(ctx context.Context, topic string, first, count int, codec string) error
	// Consume reads count records in the group from the beginning (or its committed offsets),
	// hands each to emit, and commits what it emitted before it returns.
	Consume(ctx context.Context, topic string, count int, group string, emit func(Consumed) error) error
	Offsets(ctx context.Context, topic string, timestampMs int64) (latest, byTime []PartitionOffset, err error)
}

// Main runs the command line of a client program; name prefixes its error line.
func Main(name string, newClient func(bootstrap string) Client) {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "%s workload failed: %v\n", name, err)
		os.Exit(1)
	}
	if len(os.Args) < 5 {
		fail(fmt.Errorf("usage: %s-workload BOOTSTRAP COMMAND TOPIC ARG...", name))
	}
	bootstrap, command, topic, args := os.Args[1], os.Args[2], os.Args[3], os.Args[4:]
	number := func(i int) int {
		if i >= len(args) {
			fail(fmt.Errorf("%s: missing argument %d", command, i+1))
		}
		n, err := strconv.Atoi(args[i])
		if err != nil {
			fail(err)
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := newClient(bootstrap)
	out := json.NewEncoder(os.Stdout)
	var err error
	switch command {
	case "create":
		err = client.Create(ctx, topic, number(0))
	case "produce":
		if len(args) < 3 {
			fail(fmt.Errorf("produce: FIRST COUNT CODEC"))
		}
		err = client.Produce(ctx, topic, number(0), number(1), args[2])
	case "consume":
		if len(args) < 2 {
			fail(fmt.Errorf("consume: COUNT GROUP"))
		}
		err = client.Consume(ctx, topic, number(0), args[1], func(c Consumed) error { return out.Encode(c) })
	case "offsets":
		var latest, byTime []PartitionOffset
		latest, byTime, err = client.Offsets(ctx, topic, int64(number(0)))
		if err == nil {
			err = out.Encode(map[string][]PartitionOffset{"latest": sorted(latest), "by_time": sorted(byTime)})
		}
	default:
		err = fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		fail(err)
	}
}

func sorted(list []PartitionOffset) []PartitionOffset {
	sort.Slice(list, func(a, b int) bool { return list[a].Partition < list[b].Partition })
	return list
}
