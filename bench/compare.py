#!/usr/bin/env python3
"""Prints the side-by-side table of docs/benchmarks.md from bench/results/*.json.

Usage: python3 bench/compare.py [RESULTS_DIR]
"""
import json
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")


def load(name):
    try:
        return json.load(open(os.path.join(d, name)))
    except FileNotFoundError:
        return None


def fig(r, name):
    return next((f["value"] for f in r["figures"] if f["name"] == name), None) if r else None


def lat(r, name, key):
    if not r:
        return None
    s = next((l["summary"] for l in r["latencies"] if l["name"] == name), None)
    return s[key] if s else None


ROWS = [
    ("latency, 20 msg/s: submit → fetched p50 (ms)", "latency-light", lambda r: lat(r, "submit → fetched", "p50_ms"), "lower"),
    ("latency, 20 msg/s: submit → fetched p99 (ms)", "latency-light", lambda r: lat(r, "submit → fetched", "p99_ms"), "lower"),
    ("latency, 1,000 msg/s target: submission rate reached (msg/s)", "latency-1000", lambda r: fig(r, "submission rate"), "higher"),
    ("latency, 1,000 msg/s target: submit → fetched p50 (ms)", "latency-1000", lambda r: lat(r, "submit → fetched", "p50_ms"), "lower"),
    ("latency, 1,000 msg/s target: submit → fetched p99 (ms)", "latency-1000", lambda r: lat(r, "submit → fetched", "p99_ms"), "lower"),
    ("throughput, 100 senders, 4 KiB: accepted (msg/s)", "throughput", lambda r: fig(r, "submission rate"), "higher"),
    ("throughput, 100 senders, 4 KiB: delivered (msg/s)", "throughput", lambda r: fig(r, "delivered rate (first submit → last fetch)"), "higher"),
    ("fan-out 1,000: submit → 250 for the one message with 1,000 RCPT, p50 (ms)", "fanout", lambda r: lat(r, "submit → 250 (1 txn, N RCPT)", "p50_ms"), "lower"),
    ("fan-out 1,000: last recipient notified, median of rounds (ms)", "fanout", lambda r: lat(r, "last recipient notified", "p50_ms"), "lower"),
    ("fan-out 1,000: submit → EXISTS p50 (ms)", "fanout", lambda r: lat(r, "submit → EXISTS (each)", "p50_ms"), "lower"),
    ("fan-out 1,000: submit → EXISTS p99 (ms)", "fanout", lambda r: lat(r, "submit → EXISTS (each)", "p99_ms"), "lower"),
]


def fmt(v):
    return "–" if v is None else (f"{v:,.1f}" if v < 100 else f"{v:,.0f}")


def load1(r):
    return r["parameters"].get("load_average_before", "?").split(" ")[0] if r else "?"


print("| figure | kith-relay | Postfix + Dovecot | Postfix + Dovecot / kith-relay | load avg (relay / P+D) |")
print("|---|---:|---:|---:|---:|")
for label, scenario, get, _better in ROWS:
    k = get(load(f"kith-relay-{scenario}.json"))
    p = get(load(f"postfix+dovecot-{scenario}.json"))
    ratio = f"{p / k:.2f}×" if k and p else "–"
    rk, rp = load(f"kith-relay-{scenario}.json"), load(f"postfix+dovecot-{scenario}.json")
    print(f"| {label} | {fmt(k)} | {fmt(p)} | {ratio} | {load1(rk)} / {load1(rp)} |")
lk = load1(load("kith-relay-idle.json"))
lh = load1(load("postfix+dovecot-idle-10000-hibernate.json"))
ln = load1(load("postfix+dovecot-idle-2000-nohibernate.json"))
idle_k = fig(load("kith-relay-idle.json"), "PSS per idle connection")
idle_h = fig(load("postfix+dovecot-idle-10000-hibernate.json"), "PSS per idle connection")
idle_n = fig(load("postfix+dovecot-idle-2000-nohibernate.json"), "PSS per idle connection")
ratio = f"{idle_h / idle_k:.2f}×" if idle_k and idle_h else "–"
print(f"| idle IMAP IDLE, 10,000 conns: server PSS per connection (KiB) | {fmt(idle_k)} | {fmt(idle_h)} (hibernation on) | {ratio} | {lk} / {lh} |")
ratio = f"{idle_n / idle_k:.2f}×" if idle_k and idle_n else "–"
print(f"| idle, Dovecot default (2,000 conns, 1 process each): PSS per connection (KiB) | {fmt(idle_k)} | {fmt(idle_n)} | {ratio} | {lk} / {ln} |")
