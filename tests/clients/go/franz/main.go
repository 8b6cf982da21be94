// The client-compatibility workload with franz-go (commands: see package workload).
//
// franz-go negotiates the newest version of every API the broker advertises and is idempotent
// by default, so it exercises the top of each version range.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"moldau.test/goclients/workload"
)

type client struct{ opts []kgo.Opt }

func main() {
	workload.Main("franz-go", func(bootstrap string) workload.Client {
		opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ClientID("franz-go-workload")}
		if os.Getenv("MOLDAU_TEST_CLIENT_LOG") != "" { // the client's own debug log, on stderr
			opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
		}
		return client{append(opts, securityOpts()...)}
	})
}

// securityOpts: TLS and SASL from MOLDAU_TEST_* environment variables (tests of issue 11):
// SECURITY_PROTOCOL (SSL, SASL_SSL, SASL_PLAINTEXT), SSL_CA / SSL_CERT / SSL_KEY (PEM files),
// SASL_MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SASL_USERNAME, SASL_PASSWORD.
func securityOpts() []kgo.Opt {
	protocol := os.Getenv("MOLDAU_TEST_SECURITY_PROTOCOL")
	var opts []kgo.Opt
	if protocol == "SSL" || protocol == "SASL_SSL" {
		config := &tls.Config{ServerName: "localhost"}
		if ca := os.Getenv("MOLDAU_TEST_SSL_CA"); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				panic(err)
			}
			config.RootCAs = x509.NewCertPool()
			config.RootCAs.AppendCertsFromPEM(pem)
		}
		if cert := os.Getenv("MOLDAU_TEST_SSL_CERT"); cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, os.Getenv("MOLDAU_TEST_SSL_KEY"))
			if err != nil {
				panic(err)
			}
			config.Certificates = []tls.Certificate{pair}
		}
		opts = append(opts, kgo.DialTLSConfig(config))
	}
	if protocol == "SASL_SSL" || protocol == "SASL_PLAINTEXT" {
		user, pass := os.Getenv("MOLDAU_TEST_SASL_USERNAME"), os.Getenv("MOLDAU_TEST_SASL_PASSWORD")
		switch os.Getenv("MOLDAU_TEST_SASL_MECHANISM") {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		default:
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		}
	}
	return opts
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

func (c client) Create(ctx context.Context, topic string, partitions int) error {
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	responses, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return err
	}
	return responses.Error()
}

func (c client) Produce(ctx context.Context, topic string, first, count int, codecName string) error {
	opts := append(c.opts, kgo.ProducerBatchCompression(codec(codecName)), kgo.ProducerLinger(5*time.Millisecond))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	records := make([]*kgo.Record, 0, count)
	for i := first; i < first+count; i++ {
		m := workload.NewMessage(i)
		headers := make([]kgo.RecordHeader, 0, len(m.Headers))
		for _, h := range m.Headers {
			headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		records = append(records, &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value, Headers: headers, Timestamp: m.Timestamp})
	}
	return cl.ProduceSync(ctx, records...).FirstErr()
}

func (c client) Consume(ctx context.Context, topic string, count int, group string, emit func(workload.Consumed) error) error {
	opts := append(c.opts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	seen := 0
	for seen < count {
		fetches := cl.PollRecords(ctx, count-seen)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consumed %d of %d: %w", seen, count, err)
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		if fetchErr != nil {
			return fetchErr
		}
		for _, r := range fetches.Records() {
			headers := make([]workload.Header, 0, len(r.Headers))
			for _, h := range r.Headers {
				headers = append(headers, workload.Header{Key: h.Key, Value: h.Value})
			}
			if err := emit(workload.Consumed{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value,
				Headers: headers, Timestamp: r.Timestamp.UnixMilli()}); err != nil {
				return err
			}
			seen++
		}
	}
	// Commit exactly what was printed, then leave the group.
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return err
	}
	cl.LeaveGroup()
	return nil
}

func (c client) Offsets(ctx context.Context, topic string, timestampMs int64) (latest, byTime []workload.PartitionOffset, err error) {
	cl, err := kgo.NewClient(c.opts...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	if latest, err = collect(ends); err != nil {
		return nil, nil, err
	}
	times, err := admin.ListOffsetsAfterMilli(ctx, timestampMs, topic)
	if err != nil {
		return nil, nil, err
	}
	byTime, err = collect(times)
	return latest, byTime, err
}

func collect(listed kadm.ListedOffsets) ([]workload.PartitionOffset, error) {
	var list []workload.PartitionOffset
	var firstErr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = o.Err
		}
		list = append(list, workload.PartitionOffset{Partition: o.Partition, Offset: o.Offset})
	})
	return list, firstErr
}
