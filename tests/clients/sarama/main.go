// The client-compatibility workload (tests/integration/workload.py) with IBM Sarama.
//
//	sarama-workload BOOTSTRAP create TOPIC PARTITIONS
//	sarama-workload BOOTSTRAP produce TOPIC FIRST COUNT CODEC   (none, gzip, snappy, lz4, zstd)
//	sarama-workload BOOTSTRAP consume TOPIC COUNT GROUP         -> one JSON object per record
//	sarama-workload BOOTSTRAP offsets TOPIC TIMESTAMP_MS        -> {"latest": [...], "by_time": [...]}
//
// Sarama does not negotiate versions: it sends the versions of the Kafka release named in its
// config (its default, 2.1.0, here), the fixed-version behaviour many Go services still run with.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
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

func message(topic string, i int) *sarama.ProducerMessage {
	value := []byte(fmt.Sprintf("value-%d-", i))
	for n := 0; n < i%50; n++ {
		value = append(value, byte(n))
	}
	return &sarama.ProducerMessage{
		Topic: topic,
		Key:   sarama.ByteEncoder(fmt.Sprintf("key-%d", i%97)),
		Value: sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{
			{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))},
			{Key: []byte("source"), Value: []byte("moldau-test")},
		},
		Timestamp: time.UnixMilli(baseTimestampMs + int64(i)),
	}
}

func codec(name string) sarama.CompressionCodec {
	switch name {
	case "gzip":
		return sarama.CompressionGZIP
	case "snappy":
		return sarama.CompressionSnappy
	case "lz4":
		return sarama.CompressionLZ4
	case "zstd":
		return sarama.CompressionZSTD
	}
	return sarama.CompressionNone
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "sarama workload failed: %v\n", err)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sarama-workload"
	c.Version = sarama.V2_1_0_0
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

func main() {
	if len(os.Args) < 4 {
		fail(fmt.Errorf("usage: sarama-workload BOOTSTRAP COMMAND TOPIC ..."))
	}
	bootstrap, command, topic, args := []string{os.Args[1]}, os.Args[2], os.Args[3], os.Args[4:]
	var err error
	switch command {
	case "create":
		err = create(bootstrap, topic, atoi(args[0]))
	case "produce":
		err = produce(bootstrap, topic, atoi(args[0]), atoi(args[1]), args[2])
	case "consume":
		err = consume(bootstrap, topic, atoi(args[0]), args[1])
	case "offsets":
		err = offsets(bootstrap, topic, int64(atoi(args[0])))
	default:
		err = fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		fail(err)
	}
}

func create(bootstrap []string, topic string, partitions int) error {
	admin, err := sarama.NewClusterAdmin(bootstrap, config())
	if err != nil {
		return err
	}
	defer admin.Close()
	return admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false)
}

func produce(bootstrap []string, topic string, first, count int, codecName string) error {
	c := config()
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Compression = codec(codecName)
	c.Producer.Partitioner = sarama.NewHashPartitioner
	producer, err := sarama.NewSyncProducer(bootstrap, c)
	if err != nil {
		return err
	}
	defer producer.Close()
	messages := make([]*sarama.ProducerMessage, 0, count)
	for i := first; i < first+count; i++ {
		messages = append(messages, message(topic, i))
	}
	return producer.SendMessages(messages)
}

// handler prints each record, marks it (the offset committed on exit) and stops at `count`.
type handler struct {
	mu     sync.Mutex
	out    *json.Encoder
	seen   int
	count  int
	err    error
	cancel context.CancelFunc
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		if h.seen < h.count {
			headers := make([]header, 0, len(m.Headers))
			for _, hd := range m.Headers {
				headers = append(headers, header{string(hd.Key), hd.Value})
			}
			if err := h.out.Encode(consumed{m.Partition, m.Offset, m.Key, m.Value, headers, m.Timestamp.UnixMilli()}); err != nil {
				h.err = err
			}
			session.MarkMessage(m, "")
			h.seen++
			if h.seen == h.count {
				session.Commit()
				h.cancel()
			}
		}
		h.mu.Unlock()
	}
	return nil
}

func consume(bootstrap []string, topic string, count int, group string) error {
	c := config()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	consumerGroup, err := sarama.NewConsumerGroup(bootstrap, group, c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &handler{out: json.NewEncoder(os.Stdout), count: count, cancel: cancel}
	deadline := time.AfterFunc(90*time.Second, cancel)
	defer deadline.Stop()
	for ctx.Err() == nil {
		if err := consumerGroup.Consume(ctx, []string{topic}, h); err != nil {
			consumerGroup.Close()
			return err
		}
	}
	if err := consumerGroup.Close(); err != nil {
		return err
	}
	if h.err != nil {
		return h.err
	}
	if h.seen < count {
		return fmt.Errorf("consumed %d of %d before the deadline", h.seen, count)
	}
	return nil
}

func offsets(bootstrap []string, topic string, timestampMs int64) error {
	client, err := sarama.NewClient(bootstrap, config())
	if err != nil {
		return err
	}
	defer client.Close()
	partitions, err := client.Partitions(topic)
	if err != nil {
		return err
	}
	sort.Slice(partitions, func(a, b int) bool { return partitions[a] < partitions[b] })
	var latest, byTime []partitionOffset
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		at, err := client.GetOffset(topic, p, timestampMs)
		if err != nil {
			return err
		}
		latest = append(latest, partitionOffset{p, end})
		byTime = append(byTime, partitionOffset{p, at})
	}
	return json.NewEncoder(os.Stdout).Encode(map[string][]partitionOffset{"latest": latest, "by_time": byTime})
}
