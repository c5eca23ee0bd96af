"""The node: the trio runtime of one school, its stores and its services. Owns every file.

Layout (one room per concern; imports point down: cli -> node -> protocol -> crypto):

Stores and library operations (no network)
    home.py          a node's home folder: key, block store, database; init/open
    db.py            the one SQLite database (WAL), its migrations, pins, settings
    blockstore.py    content-addressed blocks: big ones as files, small ones in SQLite
    feeds.py         append-only signed feeds; ``admit``: the one rule for entries from outside
    catalog.py       resources indexed from feed entries, full-text search (FTS5)
    textindex.py     the text inside local files (pptx, docx, xlsx, pdf, txt): bounded
                     extraction and the background indexer service
    library.py       publish, update, retract, show, get, verify
    extract.py       writing a resource's files to a folder safely
    bundle.py        USB bundles: wants files and CAR export
    bundle_import.py USB bundles: verified import
    community.py     communities on a node: founding, invites, redeeming, policy, seeding plan
    courses.py       courses: publishing, the course catalog, adoptions, due lessons, readiness
    transfers.py     the persistent transfer queue and its state table
    backup.py        backup files and restoring a school without forking its feed
    gc.py            pins' lifetimes, the cache quota, garbage collection of blocks
    storage.py       disk use, the free-space reserve, full disks
    tools.py         offline text tools for adapting resources (pinyin, 简/繁, keywords, reading)
    ai.py            the AI assistant: engine settings, tasks, streamed chat, drafts, ai-model files
    limits.py        bandwidth limits, schedules, monthly budget (settings and the limiter)
    service.py       the systemd unit of ``schoolmesh service install``
    startup.py       what ``start`` checks and says before the node runs
    errors.py        the errors the node reports to its callers

The running node (trio services, each with ``serve(*, task_status)`` and its own tasks)
    daemon.py        ``Node``: wires the services in one place; the control API's methods
    events.py        the in-process event bus; DatabaseWatcher (writes by any process)
    scheduler.py     the transfer scheduler (Peers and Exchange are its narrow interfaces)
    dialler.py       keeps bootstrap peers and community seeds connected
    replication.py   feed replication as a service: gossiped heads in and out, sync rounds
    sync.py          the feed protocol (``/schoolmesh/feed/1.0.0``): serving and pulling
    community_service.py  communities on the network: redeem/charter, join, link, topics, seeding
    course_service.py     adopted courses: queues the resources of coming lessons (events, dates)
    control.py       the local control API (HTTP on 127.0.0.1, bearer token)
    peerlog.py       bounded logging of what remote peers cause
    board.py         requests and feedback as the web library shows them
    teachers.py      teacher certificates and signatures in feeds: the feed rule, the index
    identities.py    teachers' keys on a node: sealed under passwords, certified, export/import
    studio.py        master-teacher studios: the pure fold of studio entries, actions, listings
    contributions.py a teacher's record of contributions from signed entries; CSV
    oversight.py     community reports, holdings summaries, the copy audit, moderation,
                     feedback reaching its author (the computing is protocol/report.py)
    web/             the teacher web library: app.py (routes), pages.py (framework),
                     browse.py (reading), teach.py (changing), operate.py (operator pages),
                     drafts.py (text tools in the adapt flow), staging.py (form drafts:
                     staged uploads, one publish per form), preview.py (Office/PDF pages as
                     images, in the background), courses.py (this week, course pages,
                     publishing a course), auth.py, upload.py, qr.py,
                     stream.py (HTTP Range from the block store), i18n.py and texts_features.py
                     (the pages' texts), server.py,
                     studios.py (studios, mentoring, records of contributions),
                     report.py (the community report, feedback on my resources),
                     charts.py (SVG charts), usb.py (drives, background USB jobs),
                     assist.py (the AI assistant: streamed tasks, drafts)

py-libp2p, behind one wall (p2p/)
    p2p/host.py      the host as schoolmesh needs it; dialling by address kind
    p2p/streams.py   what every stream protocol shares: request/response, close, reset
    p2p/tcp.py       listening: one process per port
    p2p/noise_session.py   Noise transport messages read and decrypted in bulk
    p2p/yamux_tuning.py    Yamux: window updates wake writers, wider windows, larger frames
    p2p/malloc_tuning.py   glibc malloc reusing the pages of bulk buffers
    p2p/ratelimit.py the TCP seam: limiter, byte counts, keepalive, which peers are LAN
    p2p/connmgr.py   which connections a node keeps
    p2p/meter.py     bytes per protocol
    p2p/gossip.py    gossipsub carrying signed heads
    p2p/routing.py   kad-dht provider records
    p2p/relay.py     circuit relay v2 for community members
    p2p/bitswap.py, p2p/bitswap_fetch.py   Bitswap 1.2.0: serving and fetching (pacing:
                     protocol/bitswap_flow.py; which provider gets which want, timeouts:
                     protocol/want_scheduler.py)
"""
