"""Dispute packs: a self-contained, signed file of histories that anyone can check offline."""
