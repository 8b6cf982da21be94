// The client-compatibility workload (tests/integration/workload.py) with KafkaJS.
//
//   node workload.js BOOTSTRAP create TOPIC PARTITIONS
//   node workload.js BOOTSTRAP produce TOPIC FIRST COUNT [gzip|none]
//   node workload.js BOOTSTRAP consume TOPIC COUNT GROUP      -> one JSON object per record
//   node workload.js BOOTSTRAP offsets TOPIC TIMESTAMP_MS     -> {"latest": [...], "by_time": [...]}
//
// Messages are workload.py's message(i): key "key-<i % 97>", value "value-<i>-" followed by the
// bytes 0..(i % 50)-1, headers seq=<i> and source=moldau-test, timestamp BASE + i. Binary fields
// are printed as base64 so that the Python side compares bytes, not strings.
"use strict";

const { Kafka, CompressionTypes, logLevel } = require("kafkajs");

const BASE_TIMESTAMP_MS = 1700000000000n;
const TIMEOUT_MS = 60000;

function message(i) {
  const tail = Buffer.from(Array.from({ length: i % 50 }, (_, n) => n));
  return {
    key: Buffer.from(`key-${i % 97}`),
    value: Buffer.concat([Buffer.from(`value-${i}-`), tail]),
    headers: { seq: Buffer.from(String(i)), source: Buffer.from("moldau-test") },
    timestamp: String(BASE_TIMESTAMP_MS + BigInt(i)),
  };
}

function b64(buffer) {
  return buffer === null || buffer === undefined ? null : Buffer.from(buffer).toString("base64");
}

async function create(kafka, topic, partitions) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: Number(partitions), replicationFactor: 1 }],
      waitForLeaders: true,
    });
    if (!created) throw new Error(`topic ${topic} was not created`);
  } finally {
    await admin.disconnect();
  }
}

async function produce(kafka, topic, first, count, codec) {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const compression = codec === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
    const chunk = 1000;
    for (let start = Number(first); start < Number(first) + Number(count); start += chunk) {
      const end = Math.min(start + chunk, Number(first) + Number(count));
      const messages = [];
      for (let i = start; i < end; i++) messages.push(message(i));
      await producer.send({ topic, messages, acks: -1, compression });
    }
  } finally {
    await producer.disconnect();
  }
}

async function consume(kafka, topic, count, groupId) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 10000 });
  await consumer.connect();
  let seen = 0;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const timer = setTimeout(() => finish(), TIMEOUT_MS);
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (seen >= Number(count)) return;
        const headers = Object.entries(message.headers || {}).map(([key, value]) => ({ key, value: b64(value) }));
        process.stdout.write(JSON.stringify({
          partition, offset: Number(message.offset), key: b64(message.key), value: b64(message.value),
          headers, timestamp: Number(message.timestamp),
        }) + "\n");
        seen += 1;
        if (seen >= Number(count)) finish();
      },
    });
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect(); // commits the offsets of what was handed to eachMessage
  }
}

async function offsets(kafka, topic, timestamp) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const latest = await admin.fetchTopicOffsets(topic);
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, Number(timestamp));
    const norm = (list) => list
      .map((p) => ({ partition: p.partition, offset: Number(p.offset), low: p.low === undefined ? null : Number(p.low) }))
      .sort((a, b) => a.partition - b.partition);
    process.stdout.write(JSON.stringify({ latest: norm(latest), by_time: norm(byTime) }) + "\n");
  } finally {
    await admin.disconnect();
  }
}

// TLS and SASL from MOLDAU_TEST_* environment variables (tests of issue 11): SECURITY_PROTOCOL
// (SSL, SASL_SSL, SASL_PLAINTEXT), SSL_CA / SSL_CERT / SSL_KEY (PEM files), SASL_MECHANISM,
// SASL_USERNAME, SASL_PASSWORD.
function security() {
  const env = process.env;
  const protocol = env.MOLDAU_TEST_SECURITY_PROTOCOL || "PLAINTEXT";
  const options = {};
  if (protocol === "SSL" || protocol === "SASL_SSL") {
    const fs = require("fs");
    options.ssl = { servername: "localhost" };
    if (env.MOLDAU_TEST_SSL_CA) options.ssl.ca = [fs.readFileSync(env.MOLDAU_TEST_SSL_CA, "utf-8")];
    if (env.MOLDAU_TEST_SSL_CERT) {
      options.ssl.cert = fs.readFileSync(env.MOLDAU_TEST_SSL_CERT, "utf-8");
      options.ssl.key = fs.readFileSync(env.MOLDAU_TEST_SSL_KEY, "utf-8");
    }
  }
  if (protocol === "SASL_SSL" || protocol === "SASL_PLAINTEXT") {
    options.sasl = {
      mechanism: (env.MOLDAU_TEST_SASL_MECHANISM || "SCRAM-SHA-512").toLowerCase(),
      username: env.MOLDAU_TEST_SASL_USERNAME,
      password: env.MOLDAU_TEST_SASL_PASSWORD,
    };
  }
  return options;
}

async function main() {
  const [bootstrap, command, ...args] = process.argv.slice(2);
  const kafka = new Kafka({
    clientId: "kafkajs-workload",
    brokers: [bootstrap],
    logLevel: logLevel.ERROR,
    retry: { retries: 8, initialRetryTime: 100 },
    ...security(),
  });
  const commands = { create, produce, consume, offsets };
  if (!commands[command]) throw new Error(`unknown command ${command}`);
  await commands[command](kafka, ...args);
}

// Writes to a pipe are asynchronous in Node: exit only once stdout has taken everything written
// (process.exit would cut the last lines short), and not wait for KafkaJS's timers either.
main().then(
  () => process.stdout.write("", () => process.exit(0)),
  (error) => { process.stderr.write(`kafkajs workload failed: ${error.stack || error}\n`, () => process.exit(1)); },
);
