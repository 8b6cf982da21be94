"""`moldau console`: a web console for Moldau or any Apache Kafka cluster.

A client tool like cli/: it reaches the cluster only through confluent-kafka (cluster.py) and,
where Moldau nodes offer them, their /metrics (metrics.py); web.py serves the pages and the
JSON API on aiohttp; render.py shows untrusted bytes safely; static/ holds the page shell,
its stylesheet and its one script (ours; no build step, nothing third-party).
"""
