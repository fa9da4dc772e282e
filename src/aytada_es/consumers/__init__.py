"""Stage consumers: each reacts to its events on Kafka and saves the next command."""
