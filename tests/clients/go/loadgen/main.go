// loadgen: a produce/consume load generator on franz-go, for benchmarks/compare.py.
//
// Theory of operation. The Python generator (`moldau perf`, librdkafka through
// confluent-kafka) spends more CPU per record than the broker it measures, so on a two-core
// machine it, not the broker, sets the pace. This program moves records with franz-go from
// several goroutines and clients at once, keeps the per-record work to one closure and one
// latency slot, and prints one JSON object with what the harness needs: throughput, produce
// latency percentiles, and how evenly the acknowledgements arrived (so a run that stalled
// shows it, not only a lower average).
//
//	loadgen produce -brokers B -topic T -records N -size S [-producers P] [-acks 1|all|0]
//	        [-linger 5ms] [-rate R] [-idempotent] [-auto-create] [-batch-bytes X] [-max-buffered-bytes X]
//	        [-transactional-id ID [-txn-records 100]]
//	loadgen consume -brokers B -topic T -records N [-consumers C] [-fetch-max-bytes X]
//	        [-partition-max-bytes X] [-timeout 60s] [-read-committed]
//
// Produce: P clients (each its own connections, like P producer processes) share the N
// records; each record's latency runs from just before Produce (so it includes time spent
// waiting for buffer space, as Kafka's ProducerPerformance counts it) to its acknowledgement.
// Consume: C clients read the topic's partitions from the beginning, without a group (client
// k reads the partitions p with p % C == k), until N records have arrived.
// Transactions: with -transactional-id each producer client is transactional (its id gets the
// client's number appended) and commits every -txn-records records (begin, produce, flush,
// commit); -read-committed consumes with isolation level read_committed.
//
// On a cluster, both modes find the partition leaders through metadata, like any client.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const windowMs = 100 // acknowledgements are counted per 100 ms window

type result struct {
	Mode             string  `json:"mode"`
	Records          int64   `json:"records"`
	Bytes            int64   `json:"bytes"`
	Errors           int64   `json:"errors"`
	FirstError       string  `json:"first_error,omitempty"`
	Clients          int     `json:"clients"`
	ElapsedS         float64 `json:"elapsed_s"`
	RecordsPerSec    float64 `json:"records_per_sec"`
	MBPerSec         float64 `json:"mb_per_sec"`
	AvgMs            float64 `json:"avg_latency_ms,omitempty"`
	P50Ms            float64 `json:"p50_ms,omitempty"`
	P95Ms            float64 `json:"p95_ms,omitempty"`
	P99Ms            float64 `json:"p99_ms,omitempty"`
	P999Ms           float64 `json:"p999_ms,omitempty"`
	MaxMs            float64 `json:"max_latency_ms,omitempty"`
	FirstRecordS     float64 `json:"first_record_s,omitempty"`
	Fetches          int64   `json:"fetches,omitempty"`
	FetchP50Ms       float64 `json:"fetch_response_p50_ms,omitempty"`
	FetchP99Ms       float64 `json:"fetch_response_p99_ms,omitempty"`
	FetchMeanMs      float64 `json:"fetch_response_mean_ms,omitempty"`
	FetchMeanBytes   float64 `json:"fetch_response_mean_bytes,omitempty"`
	LongestGapMs     int     `json:"longest_gap_ms"`
	SlowestWindowRps float64 `json:"slowest_window_records_per_sec"`
	Windows          []int64 `json:"windows,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen produce|consume [flags] (loadgen produce -h)")
		os.Exit(2)
	}
	var res *result
	var err error
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // fewer collections: the garbage here is short-lived records
	}
	if path := os.Getenv("LOADGEN_CPUPROFILE"); path != "" { // where the generator's own CPU goes
		if f, ferr := os.Create(path); ferr == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	switch os.Args[1] {
	case "produce":
		res, err = produceMain(os.Args[2:])
	case "consume":
		res, err = consumeMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (produce or consume)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Errors > 0 {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// windows counts events per 100 ms window since start (a fixed array: no lock, no growth).
type windows struct {
	start  time.Time
	counts []atomic.Int64
}

func newWindows(start time.Time, maxSeconds int) *windows {
	return &windows{start: start, counts: make([]atomic.Int64, maxSeconds*1000/windowMs)}
}

func (w *windows) add(now time.Time, n int64) {
	i := int(now.Sub(w.start).Milliseconds() / windowMs)
	if i >= len(w.counts) {
		i = len(w.counts) - 1
	}
	w.counts[i].Add(n)
}

// summarize fills the longest stretch without events and the slowest full window, over the
// windows the run spanned (the last, partial one excluded).
func (w *windows) summarize(res *result, elapsed time.Duration, keep bool) {
	n := int(elapsed.Milliseconds() / windowMs)
	if n > len(w.counts) {
		n = len(w.counts)
	}
	gap, longest := 0, 0
	slowest := int64(-1)
	for i := 0; i < n; i++ {
		c := w.counts[i].Load()
		if keep {
			res.Windows = append(res.Windows, c)
		}
		if c == 0 {
			gap++
			if gap > longest {
				longest = gap
			}
		} else {
			gap = 0
		}
		if slowest < 0 || c < slowest {
			slowest = c
		}
	}
	res.LongestGapMs = longest * windowMs
	if slowest >= 0 {
		res.SlowestWindowRps = float64(slowest) * 1000 / windowMs
	}
}

func commonFlags(fs *flag.FlagSet) (*string, *string, *int64) {
	brokers := fs.String("brokers", "127.0.0.1:9092", "bootstrap servers, comma-separated")
	topic := fs.String("topic", "", "topic (required)")
	records := fs.Int64("records", 1_000_000, "records to move in total")
	return brokers, topic, records
}

type produceConfig struct {
	brokers, topic, acks      string
	records                   int64
	size, producers           int
	linger                    time.Duration
	rate                      float64
	idempotent, keepWindows   bool
	autoCreate                bool
	batchBytes, bufferedBytes int
	maxSeconds                int
	transactionalID           string
	txnRecords                int64
}

func produceMain(args []string) (*result, error) {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	brokers, topic, records := commonFlags(fs)
	c := produceConfig{}
	fs.IntVar(&c.size, "size", 100, "record value size in bytes")
	fs.IntVar(&c.producers, "producers", 1, "producer clients running at once")
	fs.StringVar(&c.acks, "acks", "1", "0, 1 or all")
	fs.DurationVar(&c.linger, "linger", 5*time.Millisecond, "linger (batching delay)")
	fs.Float64Var(&c.rate, "rate", -1, "records/s over all producers; -1: flat out")
	fs.BoolVar(&c.idempotent, "idempotent", false, "idempotent producer (franz-go's default; off like the other generators)")
	fs.IntVar(&c.batchBytes, "batch-bytes", 1_000_000, "largest record batch (franz-go ProducerBatchMaxBytes)")
	fs.IntVar(&c.bufferedBytes, "max-buffered-bytes", 32<<20, "bytes a producer buffers before Produce blocks (Java's buffer.memory)")
	fs.IntVar(&c.maxSeconds, "max-seconds", 600, "give up after this long")
	fs.BoolVar(&c.keepWindows, "windows", false, "print the acknowledgements of every 100 ms window")
	fs.BoolVar(&c.autoCreate, "auto-create", false, "let the broker create a missing topic (auto.create.topics.enable)")
	fs.StringVar(&c.transactionalID, "transactional-id", "", "transactional producers (id-0, id-1, ...): commit every -txn-records")
	fs.Int64Var(&c.txnRecords, "txn-records", 100, "records per transaction")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *topic == "" || *records <= 0 || c.producers <= 0 || c.size < 0 {
		return nil, errors.New("produce needs -topic, -records > 0, -producers > 0, -size >= 0")
	}
	c.brokers, c.topic, c.records = *brokers, *topic, *records
	return produce(c)
}

func acksOpt(acks string) (kgo.Acks, error) {
	switch acks {
	case "0":
		return kgo.NoAck(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	}
	return kgo.Acks{}, fmt.Errorf("-acks %q: want 0, 1 or all", acks)
}

func producerOpts(c produceConfig) ([]kgo.Opt, error) {
	acks, err := acksOpt(c.acks)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(c.brokers, ",")...), kgo.ClientID("moldau-loadgen"),
		kgo.RequiredAcks(acks), kgo.ProducerLinger(c.linger), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(int32(c.batchBytes)), kgo.MaxBufferedBytes(c.bufferedBytes),
		kgo.MaxBufferedRecords(1 << 30),
	}
	if c.autoCreate {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	if os.Getenv("LOADGEN_DEBUG") != "" { // the client's own log, to see what a slow run waits for
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	if c.transactionalID != "" {
		return opts, nil // transactions need the idempotent producer (and acks=all)
	}
	if !c.idempotent {
		// Without idempotence franz-go allows one request in flight per broker unless told
		// otherwise; librdkafka and Java allow five. Records may reorder on a retry, and
		// retries are off.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	return opts, nil
}

// latencySamplesMax bounds the latencies kept, as Kafka's ProducerPerformance does (it samples
// every records/500,000-th record): enough for a p99.9 from 500 samples, and the clock is read
// for one record in `every` only.
const latencySamplesMax = 500_000

type latencies struct {
	every  int64
	next   atomic.Int64
	micros []uint32
}

func newLatencies(records int64) *latencies {
	every := max(1, (records+latencySamplesMax-1)/latencySamplesMax)
	return &latencies{every: every, micros: make([]uint32, records/every+1)}
}

func (l *latencies) add(d time.Duration) {
	i := l.next.Add(1) - 1
	if i < int64(len(l.micros)) {
		l.micros[i] = uint32(min(d.Microseconds(), 1<<32-1))
	}
}

func (l *latencies) samples() []uint32 { return l.micros[:min(l.next.Load(), int64(len(l.micros)))] }

// coarseClock is the time since start to within a millisecond, kept by one goroutine, for what
// needs a time per record but not a precise one (acknowledgement windows, record timestamps):
// reading the clock for every record cost a fifth of this program's CPU.
type coarseClock struct {
	start   time.Time
	elapsed atomic.Int64 // nanoseconds
}

func startClock(ctx context.Context, start time.Time) *coarseClock {
	c := &coarseClock{start: start}
	go func() {
		ticker := time.NewTicker(time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-ticker.C:
				c.elapsed.Store(int64(now.Sub(start)))
			}
		}
	}()
	return c
}

func (c *coarseClock) now() time.Time { return c.start.Add(time.Duration(c.elapsed.Load())) }

type producing struct {
	c        produceConfig
	value    []byte
	lat      *latencies
	win      *windows
	clock    *coarseClock
	errCount atomic.Int64
	firstErr atomic.Value
	acked    atomic.Int64
}

func (p *producing) failed(err error) {
	if p.errCount.Add(1) == 1 {
		p.firstErr.Store(err.Error())
	}
}

// done is the promise of records whose latency is not sampled: no clock read, no allocation.
func (p *producing) done(_ *kgo.Record, err error) {
	if err != nil {
		p.failed(err)
		return
	}
	p.acked.Add(1)
	p.win.add(p.clock.now(), 1)
}

// runTransactions produces like run, in transactions of c.txnRecords records each.
func (p *producing) runTransactions(ctx context.Context, cl *kgo.Client, first, count int64) {
	for done := int64(0); done < count && ctx.Err() == nil; {
		n := min(p.c.txnRecords, count-done)
		if err := cl.BeginTransaction(); err != nil {
			p.failed(err)
			return
		}
		p.run(ctx, cl, first+done, n)
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			p.failed(err)
			return
		}
		done += n
	}
}

func (p *producing) run(ctx context.Context, cl *kgo.Client, first, count int64) {
	pace := p.c.rate / float64(p.c.producers)
	start := p.clock.start
	for i := int64(0); i < count && ctx.Err() == nil; i++ {
		if pace > 0 {
			if wait := time.Duration(float64(i)/pace*1e9) - time.Since(start); wait > 0 {
				time.Sleep(wait)
			}
		}
		record := &kgo.Record{Topic: p.c.topic, Value: p.value}
		if (first+i)%p.lat.every != 0 {
			record.Timestamp = p.clock.now()
			cl.Produce(ctx, record, p.done)
			continue
		}
		began := time.Now()
		record.Timestamp = began
		cl.Produce(ctx, record, func(r *kgo.Record, err error) {
			if err == nil {
				p.lat.add(time.Since(began))
			}
			p.done(r, err)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		p.failed(err)
	}
}

func produce(c produceConfig) (*result, error) {
	opts, err := producerOpts(c)
	if err != nil {
		return nil, err
	}
	clients := make([]*kgo.Client, c.producers)
	for i := range clients {
		clientOpts := opts
		if c.transactionalID != "" {
			clientOpts = append(slices.Clone(opts), kgo.TransactionalID(fmt.Sprintf("%s-%d", c.transactionalID, i)))
		}
		if clients[i], err = kgo.NewClient(clientOpts...); err != nil {
			return nil, err
		}
		defer clients[i].Close()
	}
	p := &producing{c: c, value: make([]byte, c.size), lat: newLatencies(c.records)}
	for i := range p.value {
		p.value[i] = byte('a' + i%26)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.maxSeconds)*time.Second)
	defer cancel()
	start := time.Now()
	p.clock, p.win = startClock(ctx, start), newWindows(start, c.maxSeconds)
	var wg sync.WaitGroup
	first := int64(0)
	for k, cl := range clients {
		count := c.records / int64(c.producers)
		if int64(k) < c.records%int64(c.producers) {
			count++
		}
		wg.Add(1)
		go func(cl *kgo.Client, first, count int64) {
			defer wg.Done()
			if c.transactionalID != "" {
				p.runTransactions(ctx, cl, first, count)
			} else {
				p.run(ctx, cl, first, count)
			}
		}(cl, first, count)
		first += count
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := &result{Mode: "produce", Clients: c.producers, Errors: p.errCount.Load(), ElapsedS: elapsed.Seconds()}
	if e, ok := p.firstErr.Load().(string); ok {
		res.FirstError = e
	}
	res.Records = p.acked.Load()
	res.Bytes = res.Records * int64(c.size)
	res.RecordsPerSec = float64(res.Records) / elapsed.Seconds()
	res.MBPerSec = float64(res.Bytes) / elapsed.Seconds() / (1 << 20)
	percentiles(res, p.lat.samples())
	p.win.summarize(res, elapsed, c.keepWindows)
	return res, nil
}

func percentiles(res *result, micros []uint32) {
	if len(micros) == 0 {
		return
	}
	slices.Sort(micros)
	at := func(q float64) float64 {
		i := int(q * float64(len(micros)))
		if i >= len(micros) {
			i = len(micros) - 1
		}
		return float64(micros[i]) / 1000
	}
	var sum float64
	for _, m := range micros {
		sum += float64(m)
	}
	res.AvgMs = sum / float64(len(micros)) / 1000
	res.P50Ms, res.P95Ms, res.P99Ms, res.P999Ms = at(0.50), at(0.95), at(0.99), at(0.999)
	res.MaxMs = float64(micros[len(micros)-1]) / 1000
}

func consumeMain(args []string) (*result, error) {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	brokers, topic, records := commonFlags(fs)
	consumers := fs.Int("consumers", 1, "consumer clients, each reading its share of the partitions")
	maxBytes := fs.Int("fetch-max-bytes", 50<<20, "fetch.max.bytes")
	partBytes := fs.Int("partition-max-bytes", 1<<20, "max.partition.fetch.bytes")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	keep := fs.Bool("windows", false, "print the records of every 100 ms window")
	readCommitted := fs.Bool("read-committed", false, "isolation level read_committed (committed transactions only)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *topic == "" || *records <= 0 || *consumers <= 0 {
		return nil, errors.New("consume needs -topic, -records > 0, -consumers > 0")
	}
	seeds := strings.Split(*brokers, ",")
	partitions, err := topicPartitions(seeds, *topic)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	win := newWindows(start, int(timeout.Seconds())+1)
	var total, bytes atomic.Int64
	var firstNs atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *consumers)
	times := &fetchTimes{}
	for k := 0; k < *consumers; k++ {
		assigned := map[int32]kgo.Offset{}
		for _, p := range partitions {
			if int(p)%*consumers == k {
				assigned[p] = kgo.NewOffset().AtStart()
			}
		}
		if len(assigned) == 0 {
			continue
		}
		isolation := kgo.ReadUncommitted()
		if *readCommitted {
			isolation = kgo.ReadCommitted()
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("moldau-loadgen"), kgo.WithHooks(times),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: assigned}),
			kgo.FetchMaxBytes(int32(*maxBytes)), kgo.FetchMaxPartitionBytes(int32(*partBytes)),
			kgo.BrokerMaxReadBytes(int32(max(*maxBytes, 100<<20))), kgo.FetchIsolationLevel(isolation))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		wg.Add(1)
		go func(cl *kgo.Client) {
			defer wg.Done()
			for total.Load() < *records {
				fetches := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					if total.Load() < *records { // else another consumer read the last ones
						errs <- fmt.Errorf("read %d of %d records before the timeout", total.Load(), *records)
					}
					return
				}
				if fe := fetches.Errors(); len(fe) > 0 {
					errs <- fmt.Errorf("fetch %s[%d]: %w", fe[0].Topic, fe[0].Partition, fe[0].Err)
					return
				}
				var n, b int64
				fetches.EachRecord(func(r *kgo.Record) { n++; b += int64(len(r.Value) + len(r.Key)) })
				if n > 0 {
					now := time.Now()
					firstNs.CompareAndSwap(0, now.Sub(start).Nanoseconds())
					win.add(now, n)
				}
				bytes.Add(b)
				if total.Add(n) >= *records {
					cancel() // wakes the other consumers' polls
				}
			}
		}(cl)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	res := &result{Mode: "consume", Clients: *consumers, Records: total.Load(), Bytes: bytes.Load(), ElapsedS: elapsed.Seconds()}
	for err := range errs {
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
	}
	res.RecordsPerSec = float64(res.Records) / elapsed.Seconds()
	res.MBPerSec = float64(res.Bytes) / elapsed.Seconds() / (1 << 20)
	res.FirstRecordS = float64(firstNs.Load()) / 1e9
	times.summarize(res)
	win.summarize(res, elapsed, *keep)
	return res, nil
}

// fetchTimes records, for every Fetch response that carried records, the time from the
// request's last byte written to the response's last byte read: the broker's answer time plus
// the transfer, without the consumer's own decoding (which happens after). It tells a broker
// that answers slowly from a consumer that processes slowly.
type fetchTimes struct {
	mu     sync.Mutex
	micros []uint32
	bytes  int64
}

func (f *fetchTimes) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != 1 || e2e.Err() != nil || e2e.BytesRead < 1024 { // Fetch (key 1) with records
		return
	}
	us := uint32(min((e2e.ReadWait + e2e.TimeToRead).Microseconds(), 1<<32-1))
	f.mu.Lock()
	f.micros = append(f.micros, us)
	f.bytes += int64(e2e.BytesRead)
	f.mu.Unlock()
}

func (f *fetchTimes) summarize(res *result) {
	if len(f.micros) == 0 {
		return
	}
	slices.Sort(f.micros)
	var sum float64
	for _, m := range f.micros {
		sum += float64(m)
	}
	n := len(f.micros)
	res.Fetches = int64(n)
	res.FetchP50Ms = float64(f.micros[n/2]) / 1000
	res.FetchP99Ms = float64(f.micros[min(n-1, n*99/100)]) / 1000
	res.FetchMeanMs = sum / float64(n) / 1000
	res.FetchMeanBytes = float64(f.bytes) / float64(n)
}

// topicPartitions asks the cluster for the topic's partition ids.
func topicPartitions(seeds []string, topic string) ([]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("moldau-loadgen"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	detail, ok := topics[topic]
	if !ok || detail.Err != nil {
		return nil, fmt.Errorf("topic %s: %v", topic, detail.Err)
	}
	ids := detail.Partitions.Numbers()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}
