// franz-go's transactional producer against a broker, for
// tests/integration/test_transactions_clients.py:
//
//	franztxn BOOTSTRAP TRANSACTIONAL_ID TOPIC TRANSACTIONS PARTITIONS
//
// Runs TRANSACTIONS transactions of 10 records each over PARTITIONS partitions (record i of
// transaction t has the value "t-i" and goes to partition i % PARTITIONS): even transactions
// commit, odd ones abort after their records were acknowledged (so they are in the log).
// Prints DONE when every transaction has ended.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if err := run(os.Args[1], os.Args[2], os.Args[3], atoi(os.Args[4]), atoi(os.Args[5])); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("DONE")
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func run(bootstrap, transactionalID, topic string, transactions, partitions int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.TransactionalID(transactionalID),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	for t := 0; t < transactions; t++ {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin %d: %w", t, err)
		}
		records := make([]*kgo.Record, 0, 10)
		for i := 0; i < 10; i++ {
			records = append(records, &kgo.Record{Topic: topic, Partition: int32(i % partitions),
				Value: []byte(fmt.Sprintf("%d-%d", t, i))})
		}
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			return fmt.Errorf("produce %d: %w", t, err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(t%2 == 0)); err != nil {
			return fmt.Errorf("end %d: %w", t, err)
		}
	}
	return nil
}
