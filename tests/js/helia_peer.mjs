// An independent IPFS peer for tests/test_bitswap_interop.py: Helia 7 on js-libp2p 3 (TCP,
// Noise, Yamux, identify), Bitswap as its only block broker, listening on 127.0.0.1 only.
// Nothing else: no bootstrap list, no peer discovery (mDNS), no DHT, no relay, AutoNAT, UPnP,
// no HTTP gateways or delegated routing. Blocks are kept in memory.
//
//   node --import ./polyfill.mjs helia_peer.mjs serve FILE
//       add FILE with @helia/unixfs addBytes (CIDv1, raw leaves, 1 MiB chunks), print one JSON
//       line {"cid", "multiaddrs", "peer"}, then serve until stdin closes or a signal arrives.
//   node --import ./polyfill.mjs helia_peer.mjs fetch CID MULTIADDR OUTFILE [PATH]
//       dial MULTIADDR, fetch CID (or CID/PATH inside a directory) over Bitswap, write the
//       bytes to OUTFILE, print one JSON line {"cid", "bytes", "seconds"} and exit 0.
// Any failure prints one line to stderr and exits 1.
import fs from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'

async function startHelia () {
  // createHeliaLight: no routers and no block brokers (so no HTTP gateways or delegated
  // routing); withLibp2pLight: exactly the libp2p modules listed, none of Helia's defaults.
  const helia = withBitswap(withLibp2pLight(createHeliaLight(), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: { identify: identify() },
    connectionMonitor: { enabled: false }
  }))
  await helia.start()
  return helia
}

async function serve (file) {
  const helia = await startHelia()
  const fs2 = unixfs(helia)
  const cid = await fs2.addBytes(fs.readFileSync(file))
  const stop = async () => { await helia.stop(); process.exit(0) }
  process.stdin.on('end', stop)
  process.stdin.on('close', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  console.log(JSON.stringify({
    cid: cid.toString(),
    peer: helia.libp2p.peerId.toString(),
    multiaddrs: helia.libp2p.getMultiaddrs().map(String)
  }))
}

async function fetch (cidText, addr, outFile, path) {
  const helia = await startHelia()
  try {
    const t0 = performance.now()
    const ma = multiaddr(addr)
    await helia.libp2p.dial(ma)
    const out = fs.createWriteStream(outFile)
    let bytes = 0
    // The CID goes in as text: @helia/unixfs parses it with its own multiformats (the
    // top-level multiformats is pinned at 13 for ipfs-car; a v13 CID is not a v14 CID).
    for await (const chunk of unixfs(helia).cat(cidText, { path, providers: [ma] })) {
      bytes += chunk.byteLength
      if (!out.write(chunk)) await new Promise(resolve => out.once('drain', resolve))
    }
    await new Promise((resolve, reject) => out.end(err => err ? reject(err) : resolve()))
    console.log(JSON.stringify({ cid: cidText, bytes, seconds: (performance.now() - t0) / 1000 }))
  } finally {
    await helia.stop()
  }
}

const [mode, ...args] = process.argv.slice(2)
try {
  if (mode === 'serve' && args.length === 1) {
    await serve(args[0])
  } else if (mode === 'fetch' && (args.length === 3 || args.length === 4)) {
    await fetch(...args)
    process.exit(0)
  } else {
    throw new Error('usage: helia_peer.mjs serve FILE | fetch CID MULTIADDR OUTFILE [PATH]')
  }
} catch (err) {
  console.error(`helia_peer: ${err.stack ?? err}`)
  process.exit(1)
}
