"""The sandbox's deterministic Klaviyo account: campaigns, events, flows, metrics, one account.

Everything derives from the seed, so two datasets built with the same arguments serve byte-equal
pages. Campaigns, flows and metrics are small and held as records. Events are not: generated event
`i` is computed from `(seed, i)` on demand, and its instant is non-decreasing in `i`, so a datetime
bound becomes an index range by binary search and a million events cost no memory.

Events added later (`add_events`) may be dated in the past, like Klaviyo's late arrivals. They sit
in a small sorted tuple and are merged with the generated ones by the key `(micros, seq)`, where
`seq` numbers every event ever created; event ids are built so that they sort like `seq`, which
makes "ties broken by id" and "ties broken by seq" the same order.

The data is awkward on purpose (datetimes with and without `T` and microseconds, nulls, unicode,
integers beyond 64 bits, null profile relationships) because that is what connectors trip on.
"""

from __future__ import annotations

import copy
import json
import random
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from heapq import merge
from typing import Any

from klaviyo_sandbox.filters import EPOCH

KINDS = ("campaigns", "events", "flows", "metrics", "accounts")
RESOURCE_TYPES = {
    "campaigns": "campaign",
    "events": "event",
    "flows": "flow",
    "metrics": "metric",
    "accounts": "account",
}
CHANNELS = ("email", "sms", "mobile_push")
SEND_METHODS = (
    "static",
    "smart_send_time",
    "throttled",
    "immediate",
    "ab_test_campaign",
    "unsupported",
)
CAMPAIGN_STATUSES = (
    "Draft",
    "Scheduled",
    "Sent",
    "Sending",
    "Cancelled",
    "Cancelled: No Recipients",
    "Variations Sent",
    "Queued without Recipients",
)
FLOW_STATUSES = ("live", "manual", "draft")
TRIGGER_TYPES = (
    "Metric",
    "Added to List",
    "Unconfigured",
    "Date Based",
    "Price Drop",
    "Low Inventory",
)
DEFAULT_START = datetime(2021, 1, 1, tzinfo=timezone.utc)
DEFAULT_END = datetime(2025, 1, 1, tzinfo=timezone.utc)

# Datetime renderings Klaviyo is seen to return; the served text always equals the stored instant.
_STYLES = ("T", "T_micro", "space", "space_micro")
_MASK64 = (1 << 64) - 1
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DIGIT_PAIRS = [high + low for high in _CROCKFORD for low in _CROCKFORD]
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_PROFILE_MULTIPLIER = 0x9E3779B97F4A7C15F39D  # odd, so a bijection modulo 2**80
_GROUP = 3  # consecutive generated events share one second
_UUID_EPOCH_OFFSET = 0x01B21DD213814000  # 100 ns ticks from 1582-10-15 to 1970-01-01

_CAMPAIGN_NAMES = (
    "Black Friday 🎉 #{n}",
    "Newsletter — März #{n}",
    "שלום, summer sale #{n}",
    "  Leading and trailing spaces #{n}  ",
    'Quote\'s "double" #{n}',
    "Weekly digest #{n}",
    "مرحبا بكم #{n}",
    "Line\u2028separator #{n}",
)
_FLOW_NAMES = (
    "Welcome Series #{n}",
    "Abandoned Cart — Reminder #{n}",
    "Browse Abandonment 🛒 #{n}",
    "Win-back #{n}",
    "Price drop 📉 #{n}",
    "Birthday 🎂 #{n}",
)
_METRICS = (
    ("Clicked Email", "klaviyo", "Klaviyo", "Internal"),
    ("Opened Email", "klaviyo", "Klaviyo", "Internal"),
    ("Placed Order", "shopify", "Shopify", "eCommerce"),
    ("Received SMS", "klaviyo", "Klaviyo", "Internal"),
    ("Viewed Product", "api", "API", "API"),
    ("Clicked Email", "api", "API", "API"),
    ("Active on Site", "api", "API", "API"),
    ("Checkout Started", "shopify", "Shopify", "eCommerce"),
)


def micros_of(moment: datetime) -> int:
    """Epoch microseconds of a datetime; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_micros(micros: int, style: str = "T") -> str:
    """Render epoch microseconds the way Klaviyo does; `style` picks `T`/space and fraction."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = _format_seconds(seconds, "T" if style.startswith("T") else " ")
    if style.endswith("micro") and fraction:
        text += f".{fraction:06d}"
    return text + "+00:00"


def _format_seconds(seconds: int, separator: str) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, rest = divmod(rest, 60)
    return f"{_format_day(days)}{separator}{hours:02d}:{minutes:02d}:{rest:02d}"


@lru_cache(maxsize=4_096)
def _format_day(days: int) -> str:
    return (EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")


def _mix(value: int) -> int:
    """A 64-bit avalanche hash (the SplitMix64 finaliser), cheap and deterministic."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _crockford(value: int, digits: int) -> str:
    """`value` as an even number of Crockford base32 digits; ids made so sort like numbers."""
    shifts = range(5 * digits - 10, -1, -10)
    return "".join([_DIGIT_PAIRS[(value >> shift) & 1023] for shift in shifts])


def _from_crockford(text: str) -> int | None:
    value = 0
    for char in text:
        digit = _CROCKFORD.find(char)
        if digit < 0:
            return None
        value = value * 32 + digit
    return value


@dataclass(frozen=True)
class Record:
    """A stored campaign, flow, metric or account.

    `values` holds what filters and sorts read: plain attribute values, datetimes as epoch
    microseconds (None when null), and extra keys such as `messages.channel`.
    """

    id: str
    attributes: dict[str, Any]
    values: dict[str, Any]


@dataclass(frozen=True)
class AddedEvent:
    """An event created by `Dataset.add_events`; sorts with generated events by `(micros, seq)`."""

    micros: int
    seq: int
    metric: int
    profile: int | None
    key: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.micros, self.seq))


@dataclass(frozen=True)
class EventRef:
    """What an event filter needs without building the resource: key, metric and profile index."""

    key: tuple[int, int]
    metric: int
    profile: int | None


class Dataset:
    """A deterministic Klaviyo account; build one with `Dataset.generate`.

    Reads and mutations are thread-safe: mutations replace immutable snapshots under a lock, so a
    request that is already paging sees either the old or the new state of a collection, never a
    half-written one. Resource `links` point at `base_url`, which a starting `SandboxServer` sets
    to its own `api_url` so links are served and returned by `resources()` identically.
    """

    def __init__(
        self,
        seed: int,
        *,
        events: int,
        start: datetime,
        end: datetime,
        records: Mapping[str, tuple[Record, ...]],
    ) -> None:
        self.seed = seed
        self.base_url = "http://127.0.0.1/api/"
        self._lock = threading.RLock()
        self._salt = _mix(seed * 1_000_003 + 17)
        self._generated = events
        self._start_s = micros_of(start) // 1_000_000
        self._span_s = max(1, (micros_of(end) - micros_of(start)) // 1_000_000)
        self._groups = max(1, -(-events // _GROUP))
        self._profiles = max(1, events // 10)
        self._records: dict[str, tuple[Record, ...]] = dict(records)
        self._generated_ids = {kind: tuple(r.id for r in found) for kind, found in records.items()}
        self._event_metrics = len(self._records["metrics"])
        self._added: tuple[AddedEvent, ...] = ()
        self._next_seq = events
        self._created = 0
        self._id_high = 1 + self._salt % 15  # top 4 of the 56 id bits: ids never start with 0
        self._profile_prefix = _crockford(self._salt >> 24, 8)
        self._profile_ids: dict[int, str] = {}  # at most `_profiles` entries

    @classmethod
    def generate(
        cls,
        seed: int = 7,
        *,
        campaigns: int = 40,
        events: int = 5000,
        flows: int = 12,
        metrics: int = 8,
        start: datetime = DEFAULT_START,
        end: datetime = DEFAULT_END,
    ) -> Dataset:
        """Build the dataset for `seed`; events are spread evenly from `start` to `end`."""
        if metrics < 1:
            raise ValueError("events need at least one metric")
        builder = _Builder(seed, micros_of(start), micros_of(end))
        records = {
            "campaigns": tuple(builder.campaign(i) for i in range(campaigns)),
            "flows": tuple(builder.flow(i) for i in range(flows)),
            "metrics": tuple(builder.metric(i) for i in range(metrics)),
            "accounts": (builder.account(),),
        }
        return cls(seed, events=events, start=start, end=end, records=records)

    # ---- reading -------------------------------------------------------------------------

    @property
    def event_count(self) -> int:
        """How many events exist, generated and added."""
        return self._generated + len(self._added)

    def records(self, kind: str) -> tuple[Record, ...]:
        """The current snapshot of a small collection, in creation order."""
        with self._lock:
            return self._records[kind]

    def resources(self, kind: str) -> list[dict[str, Any]]:
        """Every resource of `kind` as served (events in datetime order, others in id order)."""
        return list(self.iter_resources(kind))

    def iter_resources(self, kind: str) -> Iterator[dict[str, Any]]:
        """Like `resources` but lazy, so a million events can be walked without holding them."""
        if kind == "events":
            for ref in self.iter_events(None, None, ascending=True, beyond=None):
                yield self.event_resource(ref)
            return
        for record in sorted(self.records(kind), key=lambda r: r.id):
            yield self.render(kind, record)

    def render(self, kind: str, record: Record) -> dict[str, Any]:
        """The JSON:API resource of a stored record, with links under `base_url`."""
        rtype = RESOURCE_TYPES[kind]
        url = f"{self.base_url}{kind}/{record.id}/"
        attributes = copy.deepcopy(record.attributes)  # callers may edit what they get
        resource: dict[str, Any] = {"type": rtype, "id": record.id, "attributes": attributes}
        related: dict[str, tuple[str, ...]] = {
            "campaigns": ("campaign-messages", "tags"),
            "flows": ("flow-actions", "tags"),
            "metrics": ("flow-triggers",),
        }
        names = related.get(kind, ())
        if names:
            resource["relationships"] = {
                name: {"links": {"self": f"{url}relationships/{name}/", "related": f"{url}{name}/"}}
                for name in names
            }
        resource["links"] = {"self": url}
        return resource

    # ---- events --------------------------------------------------------------------------

    def event_micros(self, index: int) -> int:
        """Instant of generated event `index`; non-decreasing in `index`, whole seconds."""
        group = index // _GROUP
        return (self._start_s + group * self._span_s // self._groups) * 1_000_000

    def metric_index(self, metric_id: str) -> int | None:
        """Position of a metric in `records("metrics")` (what `EventRef.metric` holds), or None."""
        for position, record in enumerate(self.records("metrics")):
            if record.id == metric_id:
                return position
        return None

    def profile_index(self, profile_id: str) -> int | None:
        """Invert `profile_id`; None for ids this dataset never hands out."""
        if len(profile_id) != 26 or not profile_id.startswith("01" + self._profile_prefix):
            return None
        scrambled = _from_crockford(profile_id[10:])
        if scrambled is None:
            return None
        index = scrambled * pow(_PROFILE_MULTIPLIER, -1, 1 << 80) % (1 << 80)
        return index if index < self._profiles else None

    def profile_id(self, index: int) -> str:
        """A ULID-looking profile id that encodes `index` reversibly."""
        found = self._profile_ids.get(index)
        if found is None:
            scrambled = index * _PROFILE_MULTIPLIER % (1 << 80)
            found = self._profile_ids[index] = (
                "01" + self._profile_prefix + _crockford(scrambled, 16)
            )
        return found

    def iter_events(
        self,
        lo: int | None,
        hi: int | None,
        *,
        ascending: bool,
        beyond: tuple[int, int] | None,
    ) -> Iterator[EventRef]:
        """Events with `lo <= micros < hi`, in key order, strictly beyond the key `beyond`."""
        count = self._generated
        positions = range(count)
        first = 0 if lo is None else bisect_left(positions, lo, key=self.event_micros)
        stop = count if hi is None else bisect_left(positions, hi, key=self.event_micros)
        added = self._added
        a_first = 0 if lo is None else bisect_left(added, lo, key=lambda e: e.micros)
        a_stop = len(added) if hi is None else bisect_left(added, hi, key=lambda e: e.micros)

        if beyond is not None:
            gkey: Callable[[int], tuple[int, int]] = lambda i: (self.event_micros(i), i)  # noqa: E731
            akey: Callable[[AddedEvent], tuple[int, int]] = lambda e: e.key  # noqa: E731
            if ascending:
                first = max(first, bisect_right(positions, beyond, key=gkey))
                a_first = max(a_first, bisect_right(added, beyond, key=akey))
            else:
                stop = min(stop, bisect_left(positions, beyond, key=gkey))
                a_stop = min(a_stop, bisect_left(added, beyond, key=akey))

        order = range(first, stop) if ascending else range(stop - 1, first - 1, -1)
        generated = (self._generated_ref(i) for i in order)
        if a_first >= a_stop:  # no added event in range: nothing to merge
            yield from generated
            return
        late = added[a_first:a_stop] if ascending else added[a_first:a_stop][::-1]
        extra = (EventRef(e.key, e.metric, e.profile) for e in late)
        yield from merge(generated, extra, key=lambda ref: ref.key, reverse=not ascending)

    def _generated_ref(self, index: int) -> EventRef:
        hashed = _mix(self._salt ^ index)
        profile = None if (hashed >> 20) % 23 == 0 else (hashed >> 32) % self._profiles
        return EventRef((self.event_micros(index), index), hashed % self._event_metrics, profile)

    def event_resource(self, ref: EventRef) -> dict[str, Any]:
        """The served JSON:API event for a reference returned by `iter_events`, as a dict."""
        resource: dict[str, Any] = json.loads(self.event_json(ref))
        return resource

    def event_json(self, ref: EventRef, wanted: AbstractSet[str] | None = None) -> str:
        """The served event as JSON text; `wanted` limits the attributes (sparse fieldsets).

        Pages of up to 1000 events are written straight from this text, which is several times
        faster than building dicts and encoding them; `event_resource` parses the same text, so
        what tests compare is exactly what the server sends.
        """
        micros, seq = ref.key
        hashed = _mix(self._salt ^ seq)
        event_id = _crockford(((self._id_high << 52) | (seq << 16) | (hashed & 0xFFFF)) << 4, 12)
        url = f"{self.base_url}events/{event_id}/"
        metric_id = self.records("metrics")[ref.metric].id

        attributes = []
        if wanted is None or "timestamp" in wanted:
            attributes.append(f'"timestamp":{micros // 1_000_000}')
        if wanted is None or "event_properties" in wanted:
            attributes.append(f'"event_properties":{self._event_properties_json(seq, hashed)}')
        if wanted is None or "datetime" in wanted:
            style = "space_micro" if (hashed >> 40) % 10 < 6 else "T_micro"
            attributes.append(f'"datetime":"{format_micros(micros, style)}"')
        if wanted is None or "uuid" in wanted:
            attributes.append(f'"uuid":"{_time_uuid(micros, hashed)}"')

        profile = "null"
        if ref.profile is not None:
            profile = f'{{"type":"profile","id":"{self.profile_id(ref.profile)}"}}'
        return (
            f'{{"type":"event","id":"{event_id}","attributes":{{{",".join(attributes)}}},'
            f'"relationships":{{"profile":{{"data":{profile},"links":{{'
            f'"self":"{url}relationships/profile/","related":"{url}profile/"}}}},'
            f'"metric":{{"data":{{"type":"metric","id":"{metric_id}"}},"links":{{'
            f'"self":"{url}relationships/metric/","related":"{url}metric/"}}}}}},'
            f'"links":{{"self":"{url}"}}}}'
        )

    def _event_properties_json(self, seq: int, hashed: int) -> str:
        """One of eight property templates, as JSON text (written directly, like `event_json`).

        Half are constants; the others vary with the event. Together they carry what breaks
        careless loaders: decimals, integers beyond 64 bits, unicode, nulls, deep nesting.
        """
        template = (hashed >> 8) % 8
        constant = _CONSTANT_PROPERTIES.get(template)
        if constant is not None:
            return constant
        if template == 0:
            cents = (hashed >> 12) % 100_000
            return (
                f'{{"$value":{cents / 100!r},"$currency_code":"USD","OrderId":"ORD-{seq}",'
                f'"Items":[{{"ProductName":"Café crème ☕","Quantity":{1 + cents % 5},'
                '"ItemPrice":9.99},{"ProductName":"Ñandú — plush","Quantity":1,"ItemPrice":0.1,'
                '"Tags":[]}],"Discount":null}'
            )
        if template == 2:
            return (
                '{"big_int":123456789012345678901234567890,'
                f'"negative_big":{-(2**70 + seq)},"u64_plus_one":{2**64},'
                '"tiny":1e-07,"decimal":1234.5678}'
            )
        if template == 4:
            return (
                f'{{"$message":"{self._pick("campaigns", hashed)}",'
                f'"$event_id":"{seq}:{hashed % 1000}","$group_ids":[{hashed % 97},{hashed % 89}],'
                '"Campaign Name":"Weekly digest","Subject":"Your order ✔"}'
            )
        return (
            f'{{"$flow":"{self._pick("flows", hashed)}","$message":"M{hashed % 100_000:05d}",'
            '"Client Name":"Apple Mail","$ESP":0,"Email Domain":"example.com"}'
        )

    def _pick(self, kind: str, hashed: int) -> str:
        # Only from the records `generate` made: campaigns or flows added later must not change
        # what existing events say.
        generated = self._generated_ids[kind]
        return generated[(hashed >> 24) % len(generated)] if generated else ""

    # ---- mutations -----------------------------------------------------------------------

    def add_events(
        self,
        n: int,
        *,
        at: datetime,
        metric_id: str | None = None,
        profile_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Create `n` events at instant `at` (may be in the past: late arrivals); return them.

        Without `metric_id` each event takes a metric by hash; without `profile_id`, a profile.
        """
        micros = micros_of(at)
        metric = None if metric_id is None else self.metric_index(metric_id)
        if metric_id is not None and metric is None:
            raise ValueError(f"unknown metric id {metric_id!r}")
        profile = None if profile_id is None else self.profile_index(profile_id)
        if profile_id is not None and profile is None:
            raise ValueError(f"unknown profile id {profile_id!r}")

        with self._lock:
            new = []
            for _ in range(n):
                seq = self._next_seq
                self._next_seq += 1
                hashed = _mix(self._salt ^ seq)
                chosen_metric = hashed % self._event_metrics if metric is None else metric
                chosen_profile = (hashed >> 32) % self._profiles if profile is None else profile
                new.append(AddedEvent(micros, seq, chosen_metric, chosen_profile))
            self._added = tuple(sorted(self._added + tuple(new), key=lambda e: e.key))
        return [self.event_resource(EventRef(e.key, e.metric, e.profile)) for e in new]

    def touch(
        self, kind: str, item_id: str, *, updated_at: datetime, name: str | None = None
    ) -> dict[str, Any]:
        """Mark a campaign or flow as changed at `updated_at` (and rename it); return it."""
        stamp_field = {"campaigns": "updated_at", "flows": "updated"}.get(kind)
        if stamp_field is None:
            raise ValueError(f"touch supports campaigns and flows, not {kind!r}")
        micros = micros_of(updated_at)
        with self._lock:
            records = list(self._records[kind])
            ids = [r.id for r in records]
            if item_id not in ids:
                raise KeyError(item_id)
            position = ids.index(item_id)
            record = records[position]
            new_name = name if name is not None else f"{record.attributes['name']} (edited)"
            attributes = dict(record.attributes, name=new_name)
            attributes[stamp_field] = format_micros(micros, "T_micro")
            values = dict(record.values, name=new_name)
            values[stamp_field] = micros
            records[position] = replace(record, attributes=attributes, values=values)
            self._records[kind] = tuple(records)
            return self.render(kind, records[position])

    def add(self, kind: str, *, at: datetime, **attributes: Any) -> dict[str, Any]:
        """Create a campaign, flow or metric created and updated at `at`; return it.

        Keyword arguments override attributes (`name`, `status`, `archived`, `trigger_type`...);
        a campaign also takes `channel`.
        """
        if kind not in ("campaigns", "flows", "metrics"):
            raise ValueError(f"add supports campaigns, flows and metrics, not {kind!r}")
        with self._lock:
            self._created += 1
            builder = _Builder(self.seed * 7919 + self._created, micros_of(at), micros_of(at))
            index = len(self._records[kind])
            channel = attributes.pop("channel", None)
            if kind != "metrics":
                attributes.setdefault("archived", False)
            if kind == "campaigns":
                record = builder.campaign(index, channel=channel, at=micros_of(at))
            elif kind == "flows":
                record = builder.flow(index, at=micros_of(at))
            else:
                record = builder.metric(index, at=micros_of(at))
            unknown = set(attributes) - set(record.attributes)
            if unknown:
                raise ValueError(f"unknown attributes for {kind}: {sorted(unknown)}")
            record = replace(
                record,
                attributes={**record.attributes, **attributes},
                values={**record.values, **attributes},
            )
            taken = {r.id for r in self._records[kind]}
            if record.id in taken:
                raise RuntimeError("generated id collided; pick another `at`")
            self._records[kind] = (*self._records[kind], record)
            return self.render(kind, record)


# Templates 1, 3, 5 and 6 of `Dataset._event_properties_json`, the same for every event.
_CONSTANT_PROPERTIES: dict[int, str] = {
    1: _dumps(
        {
            "Subject": "Grüße 🎉 שלום עולם \u2028 next line",
            "Preview": "مرحبا\tbell\u0007 unit\u001f",
            "Family": "👩\u200d👩\u200d👧\u200d👦",
            "$extra": {},
        }
    ),
    3: _dumps(
        {
            "level1": {"level2": {"level3": {"values": [1, [2, [3, {"deep": None}]]]}}},
            "objects": [{"a": None}, {}, {"b": [None, True, False]}],
            "empty": {},
        }
    ),
    5: "{}",
    6: _dumps({"$value": None, "Source": None, "Items": None, "Note": "", "Zero": 0, "No": False}),
}


def _time_uuid(micros: int, hashed: int) -> str:
    """A version-1 (time-based) UUID for the instant, like Klaviyo's event `uuid`."""
    ticks = micros * 10 + _UUID_EPOCH_OFFSET
    time_low = ticks & 0xFFFFFFFF
    time_mid = (ticks >> 32) & 0xFFFF
    time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000
    clock_seq = (hashed & 0x3FFF) | 0x8000
    node = (hashed >> 16) & 0xFFFFFFFFFFFF
    return f"{time_low:08x}-{time_mid:04x}-{time_hi:04x}-{clock_seq:04x}-{node:012x}"


class _Builder:
    """Generates campaigns, flows, metrics and the account from a seed, one index at a time."""

    def __init__(self, seed: int, start: int, end: int) -> None:
        self.seed = seed
        self.start = start
        self.span = max(1, end - start)

    def rng(self, kind: str, index: int) -> random.Random:
        return random.Random(f"klaviyo-sandbox:{self.seed}:{kind}:{index}")

    def moment(self, rng: random.Random, low: int, style: str) -> int:
        """A random instant in [low, start + span]; whole seconds unless `style` shows micros."""
        micros = rng.randint(low, max(low, self.start + self.span))
        return micros if style.endswith("micro") else micros - micros % 1_000_000

    def campaign(self, index: int, *, channel: str | None = None, at: int | None = None) -> Record:
        rng = self.rng("campaign", index)
        channel = channel or CHANNELS[index % 3]
        method = SEND_METHODS[(index // 3) % len(SEND_METHODS)]
        status = CAMPAIGN_STATUSES[rng.randrange(len(CAMPAIGN_STATUSES))]
        archived = index % 7 == 3
        styles = [_STYLES[rng.randrange(4)] for _ in range(4)]

        created = self.moment(rng, self.start, styles[0]) if at is None else at
        updated = self.moment(rng, created, styles[1]) if at is None else at
        scheduled: int | None = None
        if status != "Draft" and index % 5 != 0:
            scheduled = self.moment(rng, created, styles[2]) if at is None else at
        send_time = None if scheduled is None or status == "Scheduled" else scheduled

        attributes = {
            "name": _CAMPAIGN_NAMES[index % len(_CAMPAIGN_NAMES)].format(n=index),
            "status": status,
            "archived": archived,
            "audiences": {
                "included": [_random_id(rng, 6) for _ in range(1 + index % 3)],
                "excluded": None if index % 4 == 0 else [_random_id(rng, 6)][: index % 2],
            },
            "send_options": {"use_smart_sending": None if index % 6 == 5 else bool(index % 2)},
            "tracking_options": _tracking_options(rng, channel, index),
            "send_strategy": _send_strategy(method, scheduled if scheduled else created, index),
            "created_at": format_micros(created, styles[0]),
            "scheduled_at": None if scheduled is None else format_micros(scheduled, styles[2]),
            "updated_at": format_micros(updated, styles[1]),
            "send_time": None if send_time is None else format_micros(send_time, styles[2]),
        }
        values = {
            "id": None,
            "name": attributes["name"],
            "status": status,
            "archived": archived,
            "messages.channel": channel,
            "created_at": created,
            "scheduled_at": scheduled,
            "updated_at": updated,
        }
        record_id = "01" + "".join(_CROCKFORD[rng.randrange(32)] for _ in range(24))
        values["id"] = record_id
        return Record(record_id, attributes, values)

    def flow(self, index: int, *, at: int | None = None) -> Record:
        rng = self.rng("flow", index)
        styles = [_STYLES[rng.randrange(4)] for _ in range(2)]
        created = self.moment(rng, self.start, styles[0]) if at is None else at
        updated = self.moment(rng, created, styles[1]) if at is None else at
        attributes = {
            "name": _FLOW_NAMES[index % len(_FLOW_NAMES)].format(n=index),
            "status": FLOW_STATUSES[(index // 2) % 3],
            "archived": index % 5 == 2,
            "created": format_micros(created, styles[0]),
            "updated": format_micros(updated, styles[1]),
            "trigger_type": TRIGGER_TYPES[index % len(TRIGGER_TYPES)],
        }
        record_id = _random_id(rng, 6)
        values = {**attributes, "id": record_id, "created": created, "updated": updated}
        return Record(record_id, attributes, values)

    def metric(self, index: int, *, at: int | None = None) -> Record:
        rng = self.rng("metric", index)
        name, key, integration_name, category = _METRICS[index % len(_METRICS)]
        if index >= len(_METRICS):
            name = f"{name} {index // len(_METRICS)}"
        styles = [_STYLES[rng.randrange(4)] for _ in range(2)]
        created = self.moment(rng, self.start, styles[0]) if at is None else at
        updated = self.moment(rng, created, styles[1]) if at is None else at
        integration = {
            "object": "integration",
            "id": _random_id(rng, 6),
            "key": key,
            "name": integration_name,
            "category": category,
        }
        attributes = {
            "name": name,
            "created": format_micros(created, styles[0]),
            "updated": format_micros(updated, styles[1]),
            "integration": integration,
        }
        record_id = _random_id(rng, 6)
        values = {
            "id": record_id,
            "name": name,
            "created": created,
            "updated": updated,
            "integration.name": integration_name,
            "integration.category": category,
        }
        return Record(record_id, attributes, values)

    def account(self) -> Record:
        rng = self.rng("account", 0)
        record_id = _random_id(rng, 6)
        attributes = {
            "test_account": True,
            "contact_information": {
                "default_sender_name": "Sandbox Store",
                "default_sender_email": "sender@example.com",
                "website_url": None,
                "organization_name": "Klaviyo Sandbox",
                "street_address": {
                    "address1": None,
                    "address2": None,
                    "city": "Boston",
                    "region": None,
                    "country": None,
                    "zip": None,
                },
            },
            "industry": None,
            "timezone": "US/Eastern",
            "preferred_currency": "USD",
            "public_api_key": record_id,
            "locale": "en-US",
        }
        return Record(record_id, attributes, {"id": record_id})


def _random_id(rng: random.Random, length: int) -> str:
    return "".join(_BASE62[rng.randrange(62)] for _ in range(length))


def _tracking_options(rng: random.Random, channel: str, index: int) -> dict[str, Any] | None:
    if channel == "mobile_push" or index % 4 == 1:
        return None
    params: list[dict[str, Any]] | None = None
    if index % 3 == 0:
        params = [
            {"type": "dynamic", "value": "campaign_name", "name": "utm_campaign"},
            {"type": "static", "value": f"sandbox-{rng.randrange(1000)}", "name": "utm_source"},
        ]
    options: dict[str, Any] = {
        "add_tracking_params": params is not None,
        "custom_tracking_params": params,
    }
    if channel == "email":
        options["is_tracking_clicks"] = None if index % 8 == 6 else True
        options["is_tracking_opens"] = bool(index % 2)
    return options


def _send_strategy(method: str, when: int, index: int) -> dict[str, Any]:
    if method == "static":
        options = (
            None if index % 2 else {"is_local": True, "send_past_recipients_immediately": False}
        )
        return {"method": method, "datetime": format_micros(when), "options": options}
    if method == "smart_send_time":
        return {"method": method, "date": format_micros(when)[:10]}
    if method == "throttled":
        percentage = (10, 11, 13, 14, 17, 20, 25, 33, 50)[index % 9]
        return {
            "method": method,
            "datetime": format_micros(when),
            "throttle_percentage": percentage,
        }
    return {"method": method}
