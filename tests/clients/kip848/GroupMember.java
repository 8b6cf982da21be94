// One member of a consumer group, for Moldau's group tests: the Java consumer with the group
// protocol given on the command line ("consumer" = KIP-848, "classic"). It prints one JSON line
// per event on stdout: assigned/revoked/lost partitions (with the wall-clock time, so that the
// test can check that no partition is owned by two members at once), the first offset it
// consumed from each partition after each assignment, and a record count; it commits after
// every poll. It stops when stdin closes (the test's way to make it leave the group).
//
// usage: GroupMember <bootstrap> <group> <protocol> <topics-or-regex> [regex] [k=v ...]

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    static synchronized void emit(String event, String body) {
        System.out.println("{\"ev\":\"" + event + "\",\"t\":" + System.currentTimeMillis() + body + "}");
        System.out.flush();
    }

    static String partitions(Collection<TopicPartition> partitions) {
        List<String> items = new ArrayList<>();
        for (TopicPartition tp : partitions) items.add("[\"" + tp.topic() + "\"," + tp.partition() + "]");
        return ",\"partitions\":[" + String.join(",", items) + "]";
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", args[1]);
        props.put("group.protocol", args[2]);
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        boolean regex = args.length > 4 && args[4].equals("regex");
        for (int i = regex ? 5 : 4; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            props.put(kv[0], kv[1]);
        }
        AtomicBoolean running = new AtomicBoolean(true);
        Thread stdinWatcher = new Thread(() -> {
            try { while (System.in.read() >= 0) { } } catch (Exception ignored) { }
            running.set(false);
        });
        stdinWatcher.setDaemon(true);
        stdinWatcher.start();
        Set<TopicPartition> fresh = new HashSet<>();
        long count = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
                public void onPartitionsAssigned(Collection<TopicPartition> p) { fresh.addAll(p); emit("assigned", partitions(p)); }
                public void onPartitionsRevoked(Collection<TopicPartition> p) { emit("revoked", partitions(p)); }
                public void onPartitionsLost(Collection<TopicPartition> p) { emit("lost", partitions(p)); }
            };
            if (regex) consumer.subscribe(new SubscriptionPattern(args[3]), listener);
            else consumer.subscribe(List.of(args[3].split(",")), listener);
            emit("started", "");
            long lastCount = 0;
            while (running.get()) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> record : records) {
                    TopicPartition tp = new TopicPartition(record.topic(), record.partition());
                    if (fresh.remove(tp)) {
                        emit("first", ",\"topic\":\"" + record.topic() + "\",\"partition\":" + record.partition()
                             + ",\"offset\":" + record.offset());
                    }
                    count++;
                }
                if (!records.isEmpty()) consumer.commitSync();
                if (count != lastCount) { emit("count", ",\"n\":" + count); lastCount = count; }
            }
        }
        emit("closed", "");
    }
}
