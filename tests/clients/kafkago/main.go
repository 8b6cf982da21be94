// The client-compatibility workload (tests/integration/workload.py) with segmentio/kafka-go.
//
//	kafkago-workload BOOTSTRAP create TOPIC PARTITIONS
//	kafkago-workload BOOTSTRAP produce TOPIC FIRST COUNT CODEC   (none, gzip, snappy, lz4, zstd)
//	kafkago-workload BOOTSTRAP consume TOPIC COUNT GROUP         -> one JSON object per record
//	kafkago-workload BOOTSTRAP offsets TOPIC TIMESTAMP_MS        -> {"latest": [...], "by_time": [...]}
//
// kafka-go is a third independent Go implementation of the protocol (its own encoder, its own
// group member), used by many Go services.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

const baseTimestampMs = int64(1700000000000)

// Every request names the client, as the other clients' do (kafka-go's default is empty).
var transport = &kafka.Transport{ClientID: "kafkago-workload"}

type header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

type consumed struct {
	Partition int      `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   []header `json:"headers"`
	Timestamp int64    `json:"timestamp"`
}

type partitionOffset struct {
	Partition int   `json:"partition"`
	Offset    int64 `json:"offset"`
}

func message(i int) kafka.Message {
	value := []byte(fmt.Sprintf("value-%d-", i))
	for n := 0; n < i%50; n++ {
		value = append(value, byte(n))
	}
	return kafka.Message{
		Key:   []byte(fmt.Sprintf("key-%d", i%97)),
		Value: value,
		Headers: []kafka.Header{
			{Key: "seq", Value: []byte(strconv.Itoa(i))},
			{Key: "source", Value: []byte("moldau-test")},
		},
		Time: time.UnixMilli(baseTimestampMs + int64(i)),
	}
}

func codec(name string) compress.Compression {
	switch name {
	case "gzip":
		return compress.Gzip
	case "snappy":
		return compress.Snappy
	case "lz4":
		return compress.Lz4
	case "zstd":
		return compress.Zstd
	}
	return compress.None
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "kafka-go workload failed: %v\n", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: kafkago-workload BOOTSTRAP COMMAND TOPIC ..."))
	}
	bootstrap, command, topic, args := os.Args[1], os.Args[2], os.Args[3], os.Args[4:]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(bootstrap), Timeout: 30 * time.Second, Transport: transport}
	var err error
	switch command {
	case "create":
		err = create(ctx, client, topic, atoi(args[0]))
	case "produce":
		err = produce(ctx, bootstrap, topic, atoi(args[0]), atoi(args[1]), args[2])
	case "consume":
		err = consume(ctx, bootstrap, topic, atoi(args[0]), args[1])
	case "offsets":
		err = offsets(ctx, client, topic, int64(atoi(args[0])))
	default:
		err = fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		fail(err)
	}
}

func create(ctx context.Context, client *kafka.Client, topic string, partitions int) error {
	response, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		return err
	}
	return response.Errors[topic]
}

func produce(ctx context.Context, bootstrap, topic string, first, count int, codecName string) error {
	writer := &kafka.Writer{
		Addr:         kafka.TCP(bootstrap),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		Compression:  codec(codecName),
		BatchSize:    1000,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    transport,
	}
	defer writer.Close()
	messages := make([]kafka.Message, 0, count)
	for i := first; i < first+count; i++ {
		messages = append(messages, message(i))
	}
	return writer.WriteMessages(ctx, messages...)
}

func consume(ctx context.Context, bootstrap, topic string, count int, group string) error {
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        []string{bootstrap},
		GroupID:        group,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        200 * time.Millisecond,
		CommitInterval: 0, // commit synchronously: what was printed is committed
	})
	out := json.NewEncoder(os.Stdout)
	for seen := 0; seen < count; seen++ {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			reader.Close()
			return fmt.Errorf("consumed %d of %d: %w", seen, count, err)
		}
		headers := make([]header, 0, len(m.Headers))
		for _, h := range m.Headers {
			headers = append(headers, header{h.Key, h.Value})
		}
		if err := out.Encode(consumed{m.Partition, m.Offset, m.Key, m.Value, headers, m.Time.UnixMilli()}); err != nil {
			reader.Close()
			return err
		}
		if err := reader.CommitMessages(ctx, m); err != nil {
			reader.Close()
			return err
		}
	}
	return reader.Close()
}

func offsets(ctx context.Context, client *kafka.Client, topic string, timestampMs int64) error {
	metadata, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return err
	}
	if len(metadata.Topics) != 1 || metadata.Topics[0].Error != nil {
		return fmt.Errorf("no metadata for %s: %v", topic, metadata.Topics)
	}
	var latestReq, byTimeReq []kafka.OffsetRequest
	for _, p := range metadata.Topics[0].Partitions {
		latestReq = append(latestReq, kafka.LastOffsetOf(p.ID))
		byTimeReq = append(byTimeReq, kafka.TimeOffsetOf(p.ID, time.UnixMilli(timestampMs)))
	}
	collect := func(requests []kafka.OffsetRequest) ([]partitionOffset, error) {
		response, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: requests}})
		if err != nil {
			return nil, err
		}
		var list []partitionOffset
		for _, p := range response.Topics[topic] {
			if p.Error != nil {
				return nil, p.Error
			}
			offset := p.LastOffset
			if len(p.Offsets) > 0 {
				for o := range p.Offsets {
					offset = o
				}
			}
			list = append(list, partitionOffset{p.Partition, offset})
		}
		sort.Slice(list, func(a, b int) bool { return list[a].Partition < list[b].Partition })
		return list, nil
	}
	latest, err := collect(latestReq)
	if err != nil {
		return err
	}
	byTime, err := collect(byTimeReq)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string][]partitionOffset{"latest": latest, "by_time": byTime})
}
