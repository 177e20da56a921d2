"""Putting a topic's partition count back after a broker reset (platform.md A-8, A-9)."""

from __future__ import annotations

from collections.abc import Callable

from dossier_runtime.settings import Settings


def repair_partition_count(settings: Settings, bootstrap: str, known: int, log: Callable[[str], None]) -> bool:
    """A reset Tansu auto-creates a polled topic with its default partition count; put the right one back.

    ``known`` is the count in the consumer's metadata, which may be stale (a
    producer may have recreated the topic correctly meanwhile), so the count
    is read again from the broker first. Only an empty topic is dropped, and
    it is recreated at once (a gap would let a client auto-create it again);
    a topic with records and another partition count is reported and left
    alone. True when the topic was recreated.
    """
    from kafka import TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError

    from dossier_runtime.kafka import make_admin, make_consumer

    topic, partitions = settings.topic, settings.partitions
    admin = make_admin(bootstrap, settings.kafka_security)
    try:
        described = admin.describe_topics([topic])
        count = len(described[0]["partitions"]) if described else known
        if count == partitions:
            return False  # already repaired (by a producer or a previous check)
        tps = [TopicPartition(topic, p) for p in range(count)]
        probe = make_consumer(bootstrap, settings.kafka_security, group_id=None)
        try:
            holds_records = any(probe.end_offsets(tps).get(tp) for tp in tps)  # non-zero even where Tansu is off
        finally:
            probe.close()
        if holds_records:
            log(
                f"topic {topic} has {count} partitions, configured {partitions}, and holds records: "
                "set DOSSIER_PARTITIONS to match"
            )
            return False
        log(f"topic {topic} came back with {count} partitions after a broker reset; recreating it with {partitions}")
        admin.delete_topics([topic])
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except (KafkaError, KeyError, IndexError) as exc:  # the broker refused, or the topic moved meanwhile
        log(f"could not repair topic {topic} yet: {exc}")
        return False
    finally:
        admin.close()
    return True
