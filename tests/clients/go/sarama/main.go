// The client-compatibility workload with IBM Sarama (commands: see package workload).
//
// Sarama does not negotiate versions: it sends the versions of the Kafka release named in its
// config (its default, 2.1.0, here), the fixed-version behaviour many Go services still run with.
package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"moldau.test/goclients/workload"
)

type client struct{ bootstrap []string }

func main() {
	workload.Main("sarama", func(bootstrap string) workload.Client { return client{strings.Split(bootstrap, ",")} })
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sarama-workload"
	c.Version = sarama.V2_1_0_0
	c.Metadata.Retry.Max = 10
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
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

func (c client) Create(ctx context.Context, topic string, partitions int) error {
	admin, err := sarama.NewClusterAdmin(c.bootstrap, config())
	if err != nil {
		return err
	}
	defer admin.Close()
	return admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false)
}

func (c client) Produce(ctx context.Context, topic string, first, count int, codecName string) error {
	conf := config()
	conf.Producer.Return.Successes = true
	conf.Producer.RequiredAcks = sarama.WaitForAll
	conf.Producer.Compression = codec(codecName)
	conf.Producer.Partitioner = sarama.NewHashPartitioner
	producer, err := sarama.NewSyncProducer(c.bootstrap, conf)
	if err != nil {
		return err
	}
	defer producer.Close()
	messages := make([]*sarama.ProducerMessage, 0, count)
	for i := first; i < first+count; i++ {
		m := workload.NewMessage(i)
		headers := make([]sarama.RecordHeader, 0, len(m.Headers))
		for _, h := range m.Headers {
			headers = append(headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
		messages = append(messages, &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(m.Key),
			Value: sarama.ByteEncoder(m.Value), Headers: headers, Timestamp: m.Timestamp})
	}
	return producer.SendMessages(messages)
}

// handler emits each record, marks it (the offset committed on exit) and stops at `count`.
type handler struct {
	mu     sync.Mutex
	emit   func(workload.Consumed) error
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
			headers := make([]workload.Header, 0, len(m.Headers))
			for _, hd := range m.Headers {
				headers = append(headers, workload.Header{Key: string(hd.Key), Value: hd.Value})
			}
			if err := h.emit(workload.Consumed{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value,
				Headers: headers, Timestamp: m.Timestamp.UnixMilli()}); err != nil {
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

func (c client) Consume(parent context.Context, topic string, count int, group string, emit func(workload.Consumed) error) error {
	conf := config()
	conf.Consumer.Offsets.Initial = sarama.OffsetOldest
	conf.Consumer.Offsets.AutoCommit.Enable = false
	conf.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	consumerGroup, err := sarama.NewConsumerGroup(c.bootstrap, group, conf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(parent) // cancelled by the handler at `count`, or the deadline
	defer cancel()
	h := &handler{emit: emit, count: count, cancel: cancel}
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

func (c client) Offsets(ctx context.Context, topic string, timestampMs int64) (latest, byTime []workload.PartitionOffset, err error) {
	cl, err := sarama.NewClient(c.bootstrap, config())
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	partitions, err := cl.Partitions(topic)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range partitions {
		end, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, nil, err
		}
		at, err := cl.GetOffset(topic, p, timestampMs)
		if err != nil {
			return nil, nil, err
		}
		latest = append(latest, workload.PartitionOffset{Partition: p, Offset: end})
		byTime = append(byTime, workload.PartitionOffset{Partition: p, Offset: at})
	}
	return latest, byTime, nil
}
