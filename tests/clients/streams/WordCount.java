// A Kafka Streams word count, the "streams" step of the classic Kafka lab, for
// tests/integration/test_kafka_streams.py. Our own few lines, run with Kafka Streams from Maven
// Central (the jars scripts/fetch-kafka.sh resolves):
//
//   java -cp 'LIBS/*:CLASSES' WordCount BOOTSTRAP APPLICATION_ID INPUT OUTPUT STATE_DIR
//
// Reads lines from INPUT, splits them into lower-case words, counts each word in a state store
// (RocksDB, with its changelog and a repartition topic created by Streams itself) and writes
// word -> count (a big-endian long) to OUTPUT. Prints "RUNNING" once the instance runs, and stops
// cleanly when stdin closes.
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Produced;

public final class WordCount {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put("consumer.auto.offset.reset", "earliest");
        // A closed Streams instance stays in its group (with Apache Kafka too) until its session
        // times out; the broker's minimum (6 s), not Streams' 45 s, lets a restart go on quickly.
        props.put("consumer.session.timeout.ms", 6000);
        props.put("consumer.heartbeat.interval.ms", 1500);
        if (args.length > 5) {
            props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args[5]);
        }

        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(args[2])
            .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
            .filter((key, word) -> !word.isEmpty())
            .groupBy((key, word) -> word)
            .count()
            .toStream()
            .to(args[3], Produced.with(Serdes.String(), Serdes.Long()));

        CountDownLatch stopped = new CountDownLatch(1);
        try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
            streams.setStateListener((now, before) -> {
                if (now == KafkaStreams.State.RUNNING) {
                    System.out.println("RUNNING");
                    System.out.flush();
                }
                if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                    stopped.countDown();
                }
            });
            streams.setUncaughtExceptionHandler(error -> {
                error.printStackTrace();
                return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            streams.start();
            Thread watcher = new Thread(() -> {
                try {
                    while (System.in.read() >= 0) { }
                } catch (java.io.IOException ignored) { }
                stopped.countDown();
            });
            watcher.setDaemon(true);
            watcher.start();
            stopped.await();
        }
    }
}
