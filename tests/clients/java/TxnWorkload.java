// The Java producer's transactional API against a broker, for
// tests/integration/test_transactions_clients.py. Our own few lines, run with Kafka's client jars
// (the ones scripts/fetch-kafka.sh resolves):
//
//   java -cp 'LIBS/*:CLASSES' TxnWorkload BOOTSTRAP TRANSACTIONAL_ID TOPIC TRANSACTIONS PARTITIONS
//
// Runs TRANSACTIONS transactions of 10 records each, spread over PARTITIONS partitions, the
// value of record i of transaction t being "t-i": even transactions commit, odd ones abort
// (after flush(), so their records did reach the broker). Prints "DONE" when all ended. With
// a sixth argument "fence", it instead opens a transaction, lets a second producer with the
// same transactional id initialize, and prints the exceptions its next send and commit raise.
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public final class TxnWorkload {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String transactionalId = args[1];
        String topic = args[2];
        int transactions = Integer.parseInt(args[3]);
        int partitions = Integer.parseInt(args[4]);
        if (args.length > 5 && args[5].equals("fence")) {
            fence(bootstrap, transactionalId, topic);
            return;
        }
        try (KafkaProducer<String, String> producer = producer(bootstrap, transactionalId)) {
            producer.initTransactions();
            for (int t = 0; t < transactions; t++) {
                producer.beginTransaction();
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, i % partitions, null, t + "-" + i));
                }
                if (t % 2 == 0) {
                    producer.commitTransaction();
                } else {
                    producer.flush();
                    producer.abortTransaction();
                }
            }
        }
        System.out.println("DONE");
    }

    static KafkaProducer<String, String> producer(String bootstrap, String transactionalId) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        return new KafkaProducer<>(props);
    }

    static void fence(String bootstrap, String transactionalId, String topic) throws Exception {
        KafkaProducer<String, String> first = producer(bootstrap, transactionalId);
        first.initTransactions();
        first.beginTransaction();
        first.send(new ProducerRecord<>(topic, 0, null, "zombie")).get();
        try (KafkaProducer<String, String> second = producer(bootstrap, transactionalId)) {
            second.initTransactions();
            System.out.println("SECOND INITIALIZED");
        }
        try {
            first.send(new ProducerRecord<>(topic, 0, null, "late")).get();
            System.out.println("SEND OK");
        } catch (ExecutionException error) {
            System.out.println("SEND " + error.getCause().getClass().getSimpleName());
        } catch (RuntimeException error) {
            System.out.println("SEND " + error.getClass().getSimpleName());
        }
        try {
            first.commitTransaction();
            System.out.println("COMMIT OK");
        } catch (RuntimeException error) {
            System.out.println("COMMIT " + error.getClass().getSimpleName());
        }
        first.close();
    }
}
