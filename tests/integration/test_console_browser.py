"""`moldau console` in a real browser (headless Chromium through Selenium), against a real Moldau
broker and against Apache Kafka 4.1.1: create a topic from the form, produce from the form,
find the message by offset and by time, watch a group's lag fall as a consumer catches up
(without a reload), reset its offsets behind a typed confirmation. Screenshots of the main
pages land in docs/console/ (shown by docs/console.md)."""

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
from confluent_kafka import Consumer, Producer

from moldau.runtime.embedded import Broker
from moldau.testing.browser import ConsoleProcess, chromium, screenshot, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def driver():
    browser = chromium()
    try:
        yield browser
    finally:
        browser.quit()


def css(driver, selector):
    return driver.find_elements("css selector", selector)


def text_of(driver, selector) -> str:
    found = css(driver, selector)
    return found[0].text if found else ""


def fill(driver, form: str, name: str, value: str) -> None:
    field = css(driver, f"#{form} [name='{name}']")[0]
    driver.execute_script("arguments[0].value = arguments[1];", field, value)


def submit(driver, form: str) -> None:
    css(driver, f"#{form} button[type='submit']")[0].click()


def confirm(driver, name: str) -> None:
    """Type the name into the confirmation dialog; the button stays disabled until it matches."""
    wait_for(lambda: css(driver, "#confirm:not([hidden])"), what="the confirmation dialog")
    ok = css(driver, "#confirm-ok")[0]
    field = css(driver, "#confirm-input")[0]
    field.send_keys(name[:-1])
    assert not ok.is_enabled(), "confirmation must need the whole name"
    field.send_keys(name[-1])
    wait_for(ok.is_enabled, what="the confirm button to enable")
    ok.click()


def consume_and_commit(bootstrap: str, group: str, topic: str, count: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    taken = 0
    deadline = time.monotonic() + 60
    try:
        while taken < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            taken += 1
            if taken == count:
                consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    assert taken == count


def produce_many(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=f"bulk-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


def scenario(driver, bootstrap: str, label: str) -> None:
    topic, group = f"web-orders-{label}", f"web-group-{label}"
    with ConsoleProcess(bootstrap) as console:
        # Overview: the cluster and its nodes.
        driver.get(console.url + "/")
        wait_for(lambda: css(driver, "#nodes tr[data-node]"), what="the node list")
        assert "alive" in text_of(driver, "#nodes")

        # Create a topic from the form.
        driver.get(console.url + "/topics")
        wait_for(lambda: css(driver, "#create-topic"), what="the create form")
        fill(driver, "create-topic", "name", topic)
        fill(driver, "create-topic", "partitions", "2")
        fill(driver, "create-topic", "configs", "retention.ms=86400000")
        submit(driver, "create-topic")
        wait_for(lambda: css(driver, f"tr[data-topic='{topic}']"), what="the new topic's row")

        # Produce from the form, three times; the last one after a whole second for the time search.
        driver.get(console.url + "/messages?topic=" + topic)
        wait_for(lambda: css(driver, "#produce-form"), what="the produce form")
        for i in range(2):
            fill(driver, "produce-form", "partition", "0")
            fill(driver, "produce-form", "key", f"key-{i}")
            fill(driver, "produce-form", "value", json.dumps({"n": i}))
            fill(driver, "produce-form", "headers", "source=browser")
            submit(driver, "produce-form")
            wait_for(lambda: text_of(driver, "#last-produced") == f"0:{i}", what=f"message {i} acknowledged")
        boundary = (int(time.time()) + 1) * 1000
        time.sleep(max(0.0, boundary / 1000 - time.time()) + 0.05)
        fill(driver, "produce-form", "partition", "0")
        fill(driver, "produce-form", "key", "late")
        fill(driver, "produce-form", "value", "the late one")
        fill(driver, "produce-form", "headers", "")
        submit(driver, "produce-form")
        wait_for(lambda: text_of(driver, "#last-produced") == "0:2", what="the late message acknowledged")

        # Find by offset.
        fill(driver, "browse-form", "partitions", "0")
        driver.execute_script("document.querySelector(\"#browse-form [name='mode']\").value = 'offset';")
        fill(driver, "browse-form", "offset", "1")
        submit(driver, "browse-form")
        wait_for(lambda: css(driver, "#messages-table tr[data-offset]") and
                 css(driver, "#messages-table tr[data-offset]")[0].get_attribute("data-offset") == "1",
                 what="offset 1 first")
        first = css(driver, "#messages-table tr[data-offset]")[0]
        assert "key-1" in first.text and '{"n": 1}' in first.text.replace('{"n":1}', '{"n": 1}')
        assert "source" in first.text and "browser" in first.text
        # JSON view pretty-prints.
        driver.execute_script("const s = document.querySelector(\"#browse-form [name='format']\");"
                              "s.value = 'json'; s.dispatchEvent(new Event('change'));")
        wait_for(lambda: '"n": 1' in css(driver, "#messages-table tr[data-offset] .value")[0].text, what="pretty JSON")
        screenshot(driver, f"messages-{label}")

        # Find by time: the first message at or after the boundary second is the late one.
        moment = datetime.fromtimestamp(boundary / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        driver.execute_script("document.querySelector(\"#browse-form [name='mode']\").value = 'timestamp';")
        fill(driver, "browse-form", "time", moment)
        submit(driver, "browse-form")
        wait_for(lambda: css(driver, "#messages-table tr[data-offset]") and
                 css(driver, "#messages-table tr[data-offset]")[0].get_attribute("data-offset") == "2",
                 what="the message at the time")
        assert "the late one" in css(driver, "#messages-table tr[data-offset]")[0].text

        # A group that is behind: lag falls on the page as a consumer catches up, without a reload.
        produce_many(bootstrap, topic, 20)
        consume_and_commit(bootstrap, group, topic, 5)
        driver.get(console.url + "/group?name=" + group)
        wait_for(lambda: text_of(driver, "#total-lag") == "18", timeout_s=30, what="lag 18")
        marker = driver.execute_script("window.__same_page = 1; return 1;")
        consume_and_commit(bootstrap, group, topic, 18)  # from its committed offset to the end
        wait_for(lambda: text_of(driver, "#total-lag") == "0", timeout_s=30, what="lag falling to 0")
        assert driver.execute_script("return window.__same_page;") == marker, "the page was reloaded"
        screenshot(driver, f"group-{label}")

        # Reset to earliest behind a typed confirmation; the group is empty (its consumer left).
        driver.execute_script("document.querySelector(\"#reset-form [name='to']\").value = 'earliest';")
        submit(driver, "reset-form")
        confirm(driver, group)
        wait_for(lambda: text_of(driver, "#total-lag") == "23", timeout_s=30, what="lag back to 23 after reset")

        # Topic detail: partitions, leader, ISR, configs with their source.
        driver.get(console.url + "/topic?name=" + topic)
        wait_for(lambda: css(driver, "#partitions-table tr[data-partition='1']"), what="the partitions")
        assert text_of(driver, "#partitions-table tr[data-partition='0'] .end-offset") == "23"
        row = css(driver, "#configs-table tr[data-config='retention.ms']")[0].text
        assert "86400000" in row and "topic" in row
        screenshot(driver, f"topic-{label}")
        driver.get(console.url + "/")
        wait_for(lambda: css(driver, "#nodes tr[data-node]"), what="the overview")
        time.sleep(4.5)  # two sampler steps: the chart has a line
        screenshot(driver, f"overview-{label}")
        driver.get(console.url + "/topics")
        wait_for(lambda: css(driver, f"tr[data-topic='{topic}']"), what="the topics")
        screenshot(driver, f"topics-{label}")
        driver.get(console.url + "/groups")
        wait_for(lambda: css(driver, f"tr[data-group='{group}']"), what="the groups")

        # Delete, confirmed by name.
        driver.get(console.url + "/topics")
        wait_for(lambda: css(driver, f"tr[data-topic='{topic}'] .delete-topic"), what="the delete button")
        css(driver, f"tr[data-topic='{topic}'] .delete-topic")[0].click()
        confirm(driver, topic)
        wait_for(lambda: not css(driver, f"tr[data-topic='{topic}']"), timeout_s=30, what="the topic gone")


def test_console_against_moldau(driver):
    with Broker(config={"metrics.port": "0"}) as broker:
        scenario(driver, broker.bootstrap_servers, "moldau")


def test_console_against_kafka(driver):
    from moldau.testing.kafka_dist import KafkaServer, need_kafka

    need_kafka()
    with KafkaServer() as kafka:
        scenario(driver, kafka.bootstrap_servers, "kafka")


def _post(url: str, body: dict, header: bool = True) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-Moldau-Console"] = "1"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_hostile_data_renders_escaped_truncated_and_readable(driver):
    """<script>, HTML, invalid UTF-8, NUL bytes and a 5 MB value; odd group names in URLs."""
    topic = "hostile.topic_name-1"
    with Broker(config={"message.max.bytes": str(8 * 1024 * 1024)}) as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "message.max.bytes": 8 * 1024 * 1024})
        producer.produce(topic, key=b"<script>window.__pwned = 1</script>",
                         value=b"<img src=x onerror=\"window.__pwned = 2\"><b>bold</b>\xff\xfe\x00\x00tail",
                         headers=[("h<i>", b"<script>window.__pwned = 3</script>"), ("bin", b"\x00\x01\xff")])
        big = b"0123456789" * (512 * 1024)  # 5 MiB
        producer.produce(topic, key=b"big", value=big)
        assert producer.flush(30) == 0
        odd_group = "grp/with?odd#chars &<b>é"
        consume_and_commit(broker.bootstrap_servers, odd_group, topic, 2)
        with ConsoleProcess(broker.bootstrap_servers) as console:
            driver.get(console.url + "/messages?topic=" + topic)
            driver.execute_script("const s = document.querySelector(\"#browse-form [name='mode']\");"
                                  "s.value = 'beginning';")
            submit(driver, "browse-form")
            wait_for(lambda: len(css(driver, "#messages-table tr[data-offset]")) == 2, what="two messages")
            rows = css(driver, "#messages-table tr[data-offset]")
            assert driver.execute_script("return window.__pwned === undefined;")
            assert "<script>window.__pwned = 1</script>" in rows[0].text
            assert '<img src=x onerror="window.__pwned = 2"><b>bold</b>' in rows[0].text
            assert "\ufffd" in rows[0].text and "not valid UTF-8" in rows[0].text
            assert "h<i>" in rows[0].text and not css(driver, "#messages-table b i, #messages-table img")
            shown = css(driver, "#messages-table tr[data-offset='1'] .value pre")[0].text
            assert len(shown) < 10_000 and shown.startswith("0123456789")
            assert "5.0 MiB" in rows[1].text
            css(driver, "#messages-table tr[data-offset='1'] .value .show-all")[0].click()
            wait_for(lambda: len(css(driver, "#messages-table tr[data-offset='1'] .value pre")[0].text) >= len(big),
                     timeout_s=30, what="the whole 5 MB value")
            driver.execute_script("const s = document.querySelector(\"#browse-form [name='format']\");"
                                  "s.value = 'hex'; s.dispatchEvent(new Event('change'));")
            wait_for(lambda: "3c 73 63 72" in css(driver, "#messages-table tr[data-offset='0'] .key")[0].text,
                     what="hex view")
            assert driver.execute_script("return window.__pwned === undefined;")
            screenshot(driver, "hostile-data")

            # An odd group name travels in the URL and back.
            driver.get(console.url + "/group?name=" + urllib.request.quote(odd_group, safe=""))
            wait_for(lambda: text_of(driver, "#group-name") == odd_group, what="the odd group's page")
            wait_for(lambda: text_of(driver, "#total-lag") == "0", what="its lag")

            # Nothing deletes or resets without a confirmation, nor from another site's form.
            status, body = _post(console.url + "/api/topic/delete", {"name": topic})
            assert status == 400 and "confirm" in body["error"]
            status, _ = _post(console.url + "/api/topic/delete", {"name": topic, "confirm": topic}, header=False)
            assert status == 403
            status, body = _post(console.url + "/api/group/reset", {"name": odd_group, "to": "earliest"})
            assert status == 400 and "confirm" in body["error"]
            assert broker.call(lambda core: core.image.topic(topic) is not None)


def test_unreachable_cluster_shows_a_banner_and_recovers(driver):
    broker = Broker().start()
    try:
        with ConsoleProcess(broker.bootstrap_servers) as console:
            driver.get(console.url + "/")
            wait_for(lambda: css(driver, "#nodes tr[data-node]"), what="the overview")
            assert not css(driver, "#banner")[0].is_displayed()
            broker.stop()
            wait_for(lambda: css(driver, "#banner")[0].is_displayed(), timeout_s=40, what="the banner")
            assert "Cannot reach the cluster" in css(driver, "#banner")[0].text
            screenshot(driver, "unreachable")
            broker.start()
            wait_for(lambda: not css(driver, "#banner")[0].is_displayed(), timeout_s=60, what="the banner to go")
    finally:
        broker.close()


def test_a_killed_node_of_a_cluster_shows_as_not_answering_and_its_partitions_move(driver):
    """On a 3-node cluster the overview lists every node; when the node leading a replicated
    topic is killed, the page shows it not answering, the topic under-replicated and a new leader
    for its partition — without a reload — and all is whole again once the node restarts."""
    from confluent_kafka.admin import AdminClient, NewTopic

    import moldau

    with moldau.Cluster(brokers=3) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        admin.create_topics([NewTopic("replicated", 1, 3)])["replicated"].result(30)
        cluster.wait_for(lambda: len(cluster.isr("replicated")) == 3, what="a full ISR")
        victim = cluster.leader("replicated")
        with ConsoleProcess(cluster.bootstrap_servers) as console:
            driver.get(console.url + "/")
            wait_for(lambda: len(css(driver, "#nodes tr[data-node]")) == 3, what="three nodes")
            assert "3 / 3" in text_of(driver, "#cards")
            cluster.kill(victim)
            row = f"#nodes tr[data-node='{victim}'] td.alive"
            wait_for(lambda: text_of(driver, row) == "not answering", timeout_s=40, what="the killed node marked")
            wait_for(lambda: "2 / 3" in text_of(driver, "#cards"), what="two of three alive")

            driver.get(console.url + "/topic?name=replicated")
            leader_cell = "tr[data-partition='0'] td.leader"
            wait_for(lambda: text_of(driver, leader_cell) not in ("", "none", str(victim)), timeout_s=40,
                     what="a new leader")
            wait_for(lambda: css(driver, "tr[data-partition='0'] td.isr.bad"), what="the ISR shown short")
            assert str(victim) not in text_of(driver, "tr[data-partition='0'] td.isr")
            screenshot(driver, "cluster-node-down")

            cluster.restart(victim)
            wait_for(lambda: not css(driver, "tr[data-partition='0'] td.isr.bad"), timeout_s=60,
                     what="the ISR whole again")


def test_connect_page_lists_connectors_and_pauses_resumes(driver, tmp_path):
    from moldau.connect.standalone import StandaloneWorker
    from moldau.connect.testing import rest

    with Broker() as broker:
        config = {"bootstrap.servers": broker.bootstrap_servers, "listeners": "http://127.0.0.1:0",
                  "offset.storage.file.filename": str(tmp_path / "offsets"),
                  "key.converter": "org.apache.kafka.connect.storage.StringConverter",
                  "value.converter": "org.apache.kafka.connect.storage.StringConverter"}
        (tmp_path / "in.txt").write_text("one\n")
        with StandaloneWorker(config) as worker:
            rest(worker.rest_url, "PUT", "/connectors/file-source/config",
                 {"connector.class": "FileStreamSource", "file": str(tmp_path / "in.txt"), "topic": "from-file"})
            with ConsoleProcess(broker.bootstrap_servers, ["--connect-url", worker.rest_url]) as console:
                driver.get(console.url + "/connect")
                state = "tr[data-connector='file-source'] .connector-state"
                wait_for(lambda: text_of(driver, state) == "RUNNING", what="the connector running")
                css(driver, "tr[data-connector='file-source'] button[data-action='pause']")[0].click()
                wait_for(lambda: text_of(driver, state) == "PAUSED", what="paused")
                assert rest(worker.rest_url, "GET", "/connectors/file-source/status")[1]["connector"]["state"] == "PAUSED"
                screenshot(driver, "connect")
                css(driver, "tr[data-connector='file-source'] button[data-action='resume']")[0].click()
                wait_for(lambda: text_of(driver, state) == "RUNNING", what="running again")
