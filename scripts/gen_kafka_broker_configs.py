"""Write src/moldau/controller/kafka_broker_configs.py from Apache Kafka's own jars.

Which broker configs Kafka lets IncrementalAlterConfigs/AlterConfigs change, and how, lives in
Kafka's KafkaConfig and DynamicBrokerConfig; this script asks them (a small Java program run with
the jars of scripts/fetch-kafka.sh, Java 17's single-file launcher) and writes the answer as a
Python table. Run it again when the Kafka version moves:

    python scripts/gen_kafka_broker_configs.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from moldau.testing.kafka_dist import java_executable, kafka_classpath, kafka_version  # noqa: E402

OUTPUT = REPO / "src" / "moldau" / "controller" / "kafka_broker_configs.py"

JAVA = r"""
import java.util.*;
import org.apache.kafka.common.config.ConfigDef;

public class BrokerConfigTable {
    static Object module(String name) throws Exception {
        return Class.forName(name).getField("MODULE$").get(null);
    }

    static Set<String> set(Object owner, String field) throws Exception {
        java.lang.reflect.Field f = owner.getClass().getDeclaredField(field);
        f.setAccessible(true);
        Object value = f.get(owner);
        Collection<?> items = value instanceof scala.collection.Iterable
            ? scala.jdk.javaapi.CollectionConverters.asJavaCollection((scala.collection.Iterable<?>) value)
            : (Collection<?>) value;
        TreeSet<String> out = new TreeSet<>();
        for (Object item : items) out.add(item.toString());
        return out;
    }

    static String text(Object value) {
        if (value == null) return null;
        if (value instanceof List) {
            StringJoiner joined = new StringJoiner(",");
            for (Object item : (List<?>) value) joined.add(item.toString());
            return joined.toString();
        }
        if (value instanceof Class) return ((Class<?>) value).getName();
        return value.toString();
    }

    static String key(String name, ConfigDef.ConfigKey key) {
        Map<String, Object> out = new LinkedHashMap<>();
        String type = key.type.toString();
        String value = type.equals("PASSWORD") ? null : text(key.defaultValue);
        String validator = key.validator == null ? null : key.validator.toString();
        return "[" + quote(name) + "," + quote(type) + "," + quote(value) + "," + quote(validator) + "]";
    }

    static String quote(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 32) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        Object kafkaConfig = module("kafka.server.KafkaConfig$");
        ConfigDef def = (ConfigDef) kafkaConfig.getClass().getMethod("configDef").invoke(kafkaConfig);
        Map<String, ConfigDef.ConfigKey> keys = def.configKeys();
        Object dynamic = module("kafka.server.DynamicBrokerConfig$");
        Object listener = module("kafka.server.DynamicListenerConfig$");
        Object quota = module("kafka.server.DynamicConfig$Broker$");
        @SuppressWarnings("unchecked")
        Map<String, ConfigDef.ConfigKey> quotaKeys =
            (Map<String, ConfigDef.ConfigKey>) quota.getClass().getMethod("configKeys").invoke(quota);
        System.out.println("{\"all\": [" + String.join(",", new TreeSet<>(keys.keySet()).stream().map(BrokerConfigTable::quote).toList()) + "],");
        Set<String> wanted = new TreeSet<>(set(dynamic, "AllDynamicConfigs"));
        wanted.addAll(set(dynamic, "ListenerMechanismConfigs"));
        List<String> rows = new ArrayList<>();
        for (String name : wanted) rows.add(key(name, keys.get(name)));
        for (String name : new TreeSet<>(quotaKeys.keySet())) if (!keys.containsKey(name)) rows.add(key(name, quotaKeys.get(name)));
        System.out.println("\"keys\": [" + String.join(",", rows) + "],");
        System.out.println("\"dynamic\": " + list(set(dynamic, "AllDynamicConfigs")) + ",");
        System.out.println("\"quota\": " + list(new TreeSet<>(quotaKeys.keySet())) + ",");
        System.out.println("\"per_broker\": " + list(set(dynamic, "PerBrokerConfigs")) + ",");
        System.out.println("\"security\": " + list(set(dynamic, "DynamicSecurityConfigs")) + ",");
        System.out.println("\"listener\": " + list(set(listener, "ReconfigurableConfigs")) + ",");
        System.out.println("\"listener_mechanism\": " + list(set(dynamic, "ListenerMechanismConfigs")) + "}");
    }

    static String list(Set<String> items) {
        return "[" + String.join(",", items.stream().map(BrokerConfigTable::quote).toList()) + "]";
    }
}
"""


def main() -> None:
    java = java_executable()
    if java is None:
        sys.exit("gen_kafka_broker_configs: java not found")
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "BrokerConfigTable.java"
        source.write_text(JAVA)
        output = subprocess.run([java, "-cp", kafka_classpath(), str(source)], capture_output=True, text=True,
                                check=True).stdout
    table = json.loads(output)
    OUTPUT.write_text(render(table))
    print(f"wrote {OUTPUT.relative_to(REPO)}: {len(table['keys'])} dynamic keys, {len(table['all'])} broker keys")


def render(table: dict) -> str:
    dynamic = set(table["dynamic"]) | set(table["quota"])
    read_only = sorted(set(table["all"]) - dynamic - set(table["listener_mechanism"]))
    lines = [
        f'"""Apache Kafka {kafka_version()}\'s broker configs, as its KafkaConfig and DynamicBrokerConfig define them.',
        "",
        "Generated by scripts/gen_kafka_broker_configs.py from Kafka's jars; do not edit. `KEYS` holds",
        "each dynamically updatable key's (type, default, validator) — the validator as Kafka prints",
        "it: `[1,...]` at least 1, `[0,...,1]` between, `[a, b]` one of; None for none.",
        '"""',
        "",
        f'KAFKA_VERSION = "{kafka_version()}"',
        "",
        "KEYS: dict[str, tuple[str, str | None, str | None]] = {",
    ]
    for name, kind, default, validator in table["keys"]:
        lines.append(f"    {name!r}: ({kind!r}, {default!r}, {validator!r}),")
    lines.append("}")
    for label, values in (("DYNAMIC", table["dynamic"]), ("QUOTA", table["quota"]),
                          ("PER_BROKER", table["per_broker"]), ("SECURITY", table["security"]),
                          ("LISTENER", table["listener"]), ("LISTENER_MECHANISM", table["listener_mechanism"]),
                          ("READ_ONLY", read_only)):
        lines.append("")
        lines.append(f"{label} = frozenset({{")
        lines += [f"    {value!r}," for value in sorted(values)]
        lines.append("})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
