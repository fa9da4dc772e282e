"""Kafka: the broker process, the event envelope, the relay and the consumer runner."""
