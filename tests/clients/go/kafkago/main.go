// The client-compatibility workload with segmentio/kafka-go (commands: see package workload).
//
// kafka-go is a third independent Go implementation of the protocol (its own encoder, its own
// group member), used by many Go services; its group member sends the oldest versions Kafka 4
// still serves.
package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"moldau.test/goclients/workload"
)

// Every request names the client, as the other clients' do (kafka-go's default is empty).
var transport = &kafka.Transport{ClientID: "kafkago-workload"}

type client struct{ bootstrap string }

func main() {
	workload.Main("kafka-go", func(bootstrap string) workload.Client { return client{bootstrap} })
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

func (c client) admin() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(strings.Split(c.bootstrap, ",")...), Timeout: 30 * time.Second, Transport: transport}
}

func (c client) Create(ctx context.Context, topic string, partitions int) error {
	response, err := c.admin().CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		return err
	}
	return response.Errors[topic]
}

func (c client) Produce(ctx context.Context, topic string, first, count int, codecName string) error {
	writer := &kafka.Writer{
		Addr:         kafka.TCP(strings.Split(c.bootstrap, ",")...),
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
		m := workload.NewMessage(i)
		headers := make([]kafka.Header, 0, len(m.Headers))
		for _, h := range m.Headers {
			headers = append(headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		messages = append(messages, kafka.Message{Key: m.Key, Value: m.Value, Headers: headers, Time: m.Timestamp})
	}
	return writer.WriteMessages(ctx, messages...)
}

func (c client) Consume(ctx context.Context, topic string, count int, group string, emit func(workload.Consumed) error) error {
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        strings.Split(c.bootstrap, ","),
		GroupID:        group,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        200 * time.Millisecond,
		CommitInterval: 0, // commit synchronously: what was printed is committed
	})
	for seen := 0; seen < count; seen++ {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			reader.Close()
			return fmt.Errorf("consumed %d of %d: %w", seen, count, err)
		}
		headers := make([]workload.Header, 0, len(m.Headers))
		for _, h := range m.Headers {
			headers = append(headers, workload.Header{Key: h.Key, Value: h.Value})
		}
		if err := emit(workload.Consumed{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value,
			Headers: headers, Timestamp: m.Time.UnixMilli()}); err != nil {
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

func (c client) Offsets(ctx context.Context, topic string, timestampMs int64) (latest, byTime []workload.PartitionOffset, err error) {
	admin := c.admin()
	metadata, err := admin.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, nil, err
	}
	if len(metadata.Topics) != 1 || metadata.Topics[0].Error != nil {
		return nil, nil, fmt.Errorf("no metadata for %s: %v", topic, metadata.Topics)
	}
	var latestReq, byTimeReq []kafka.OffsetRequest
	for _, p := range metadata.Topics[0].Partitions {
		latestReq = append(latestReq, kafka.LastOffsetOf(p.ID))
		byTimeReq = append(byTimeReq, kafka.TimeOffsetOf(p.ID, time.UnixMilli(timestampMs)))
	}
	collect := func(requests []kafka.OffsetRequest) ([]workload.PartitionOffset, error) {
		response, err := admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: requests}})
		if err != nil {
			return nil, err
		}
		var list []workload.PartitionOffset
		for _, p := range response.Topics[topic] {
			if p.Error != nil {
				return nil, p.Error
			}
			offset := p.LastOffset
			for o := range p.Offsets { // a query by time answers in Offsets (one entry)
				offset = o
			}
			list = append(list, workload.PartitionOffset{Partition: int32(p.Partition), Offset: offset})
		}
		return list, nil
	}
	if latest, err = collect(latestReq); err != nil {
		return nil, nil, err
	}
	byTime, err = collect(byTimeReq)
	return latest, byTime, err
}
