"""Adapters to the outside world that are not Kafka or the event store."""
