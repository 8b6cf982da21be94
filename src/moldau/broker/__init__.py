"""Request handlers, one module per Kafka API. Importing this package fills the API table."""

from moldau.broker import (  # noqa: F401 - imported for their @api registrations
    alter_configs,
    api_versions,
    create_partitions,
    create_topics,
    delete_records,
    delete_topics,
    describe_cluster,
    describe_configs,
    describe_log_dirs,
    fetch,
    list_offsets,
    metadata,
    offset_for_leader_epoch,
    produce,
)
