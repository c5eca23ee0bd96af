#!/usr/bin/env node
// Generator for specs/vectors/unixfs.json -- ground-truth UnixFS / CID vectors
// produced by the real JavaScript reference tools (ipfs-car 3.1.0 and the
// @ipld/unixfs version it pins), so the Python implementation can be checked
// against them.
//
// Not run in CI. Usage, from the repository root:
//
//   (cd tests/js && npm ci)
//   node specs/vectors/gen_unixfs.mjs > specs/vectors/unixfs.json
//
// The JSON goes to stdout; progress and timings go to stderr.
//
// * "files" cases with the default profile (chunk 1 MiB, width 1024) and all
//   "directories" cases are produced by running the real CLI,
//   tests/js/node_modules/.bin/ipfs-car (`pack`, `roots`, `blocks`).
// * "files" cases with small parameters call @ipld/unixfs directly with the
//   same settings shape as ipfs-car's unixfs.js (raw leaves, raw small-file
//   encoder, fixed chunker, balanced layout) but other chunk size / width.
//   As a self-check, the same direct code path is also run with the default
//   profile and must reproduce the CLI's root CID and CAR block order.
// * The extra behaviour checks that feed the "notes" array are asserted here,
//   so a change in tool behaviour makes the generator fail loudly.
//
// Input files are created in a temporary directory (removed at the end).
// The 1 GiB case is written in 1 MiB pieces (never held in memory) and
// deleted right after it has been packed.

import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const MiB = 1024 * 1024
const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..')
const jsDir = path.join(repoRoot, 'tests', 'js')
const nodeModules = path.join(jsDir, 'node_modules')
const ipfsCarBin = path.join(nodeModules, '.bin', 'ipfs-car')

if (!fs.existsSync(ipfsCarBin)) {
  console.error(`missing ${ipfsCarBin}; run "npm ci" in tests/js first`)
  process.exit(1)
}

/** Resolve an ESM specifier inside tests/js/node_modules via its package.json "exports". */
function resolveModule (specifier) {
  const parts = specifier.split('/')
  const pkgName = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
  const subpath = '.' + specifier.slice(pkgName.length)
  const pkgDir = path.join(nodeModules, pkgName)
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  let target = pkg.exports?.[subpath]
  while (target && typeof target === 'object') target = target.node ?? target.import ?? target.default
  if (typeof target !== 'string') throw new Error(`cannot resolve ${specifier}`)
  return pathToFileURL(path.join(pkgDir, target)).href
}

function pkgVersion (name) {
  return JSON.parse(fs.readFileSync(path.join(nodeModules, name, 'package.json'), 'utf8')).version
}

const UnixFS = await import(resolveModule('@ipld/unixfs'))
const { withMaxChunkSize } = await import(resolveModule('@ipld/unixfs/file/chunker/fixed'))
const { withWidth } = await import(resolveModule('@ipld/unixfs/file/layout/balanced'))
const raw = await import(resolveModule('multiformats/codecs/raw'))
const { CID, varint } = await import(resolveModule('multiformats'))
// dag-pb is a dependency of @ipld/unixfs (hoisted into tests/js/node_modules).
// Used instead of UnixFS.decode(), which in @ipld/unixfs 3.0.0 never returns
// for File nodes with links (decodeFileLinks does not advance its loop index).
const dagPB = await import(resolveModule('@ipld/dag-pb'))

const versions = {
  ipfsCar: pkgVersion('ipfs-car'),
  unixfs: pkgVersion('@ipld/unixfs'),
  multiformats: pkgVersion('multiformats')
}
if (versions.ipfsCar !== '3.1.0') throw new Error(`expected ipfs-car 3.1.0, found ${versions.ipfsCar}`)

const log = (...args) => console.error('[gen_unixfs]', ...args)
const assert = (cond, msg) => { if (!cond) throw new Error('assertion failed: ' + msg) }
const toHex = bytes => Buffer.from(bytes).toString('hex')

// ---------------------------------------------------------------------------
// Deterministic content pattern
// ---------------------------------------------------------------------------

const PATTERN = 'byte i of a file = (i*7 + (i >> 20)*13 + seed) & 0xff  (i = 0-based offset in the file)'

/** Bytes [offset, offset+length) of the pattern. */
function patternBytes (offset, length, seed) {
  const out = new Uint8Array(length)
  for (let k = 0; k < length; k++) {
    const i = offset + k
    // i*7 stays far below 2^53; `& 0xff` keeps the low 8 bits (ToInt32 wraps mod 2^32).
    out[k] = (i * 7 + Math.floor(i / MiB) * 13 + seed) & 0xff
  }
  return out
}

/** Write a pattern file of `size` bytes in 1 MiB pieces (streaming). */
function writePatternFile (filePath, size, seed) {
  fs.mkdirSync(path.dirname(filePath), { recursive: true })
  const fd = fs.openSync(filePath, 'w')
  try {
    for (let off = 0; off < size; off += MiB) {
      const piece = patternBytes(off, Math.min(MiB, size - off), seed)
      let written = 0
      while (written < piece.length) written += fs.writeSync(fd, piece, written, piece.length - written)
    }
  } finally {
    fs.closeSync(fd)
  }
  assert(fs.statSync(filePath).size === size, `size of ${filePath}`)
}

// ---------------------------------------------------------------------------
// Real CLI helpers
// ---------------------------------------------------------------------------

function ipfsCar (...args) {
  return execFileSync(ipfsCarBin, args, { encoding: 'utf8', maxBuffer: 256 * MiB, stdio: ['ignore', 'pipe', 'pipe'] })
}

/**
 * Walk a CARv1 file section by section without loading it into memory.
 * Returns [{cid, length, bytes}] in CAR order; `bytes` is only read for
 * dag-pb blocks (raw leaves can be huge and are not needed).
 */
function readCar (carPath) {
  const fd = fs.openSync(carPath, 'r')
  try {
    const size = fs.fstatSync(fd).size
    const readAt = (pos, len) => {
      const buf = new Uint8Array(len)
      let got = 0
      while (got < len) {
        const n = fs.readSync(fd, buf, got, len - got, pos + got)
        if (n === 0) break
        got += n
      }
      return buf.subarray(0, got)
    }
    const readVarint = pos => varint.decode(readAt(pos, 10)) // [value, bytesUsed]
    let pos = 0
    const [hlen, hl] = readVarint(pos)
    pos += hl + hlen // skip the dag-cbor header; roots come from `ipfs-car roots`
    const blocks = []
    while (pos < size) {
      const [len, l] = readVarint(pos)
      pos += l
      const head = readAt(pos, Math.min(len, 128))
      const [cid, rest] = CID.decodeFirst(head)
      const cidLen = head.length - rest.length
      const length = len - cidLen
      const bytes = cid.code === raw.code ? null : readAt(pos + cidLen, length)
      blocks.push({ cid, length, bytes })
      pos += len
    }
    return blocks
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Check every dag-pb link's Tsize == cumulative byte length of the linked
 * sub-DAG (block length + Tsizes of its links); returns the root's total.
 */
function checkTsizes (carBlocks, rootCid, label) {
  const byCid = new Map(carBlocks.map(b => [b.cid.toString(), b]))
  const cumulative = cidStr => {
    const b = byCid.get(cidStr)
    assert(b, `${label}: block ${cidStr} present in CAR`)
    if (b.bytes == null) return b.length
    let total = b.length
    for (const l of dagPB.decode(b.bytes).Links) {
      const sub = cumulative(l.Hash.toString())
      assert(sub === l.Tsize, `${label}: Tsize of link to ${l.Hash} is ${l.Tsize}, expected ${sub}`)
      total += sub
    }
    return total
  }
  return cumulative(rootCid)
}

/**
 * `ipfs-car pack <target> [...flags] --output <car>`; returns root printed on
 * stdout, cross-checked with `ipfs-car roots` and against the last CAR block.
 */
function pack (target, carPath, flags = [], { listBlocks = true } = {}) {
  const printed = ipfsCar('pack', target, ...flags, '--output', carPath).trim()
  const roots = ipfsCar('roots', carPath).trim()
  assert(printed === roots, `pack printed ${printed} but roots says ${roots}`)
  let blocks = null
  if (listBlocks) {
    blocks = ipfsCar('blocks', carPath).trim().split('\n').filter(Boolean)
    assert(blocks[blocks.length - 1] === printed, 'root is the last block in the CAR')
  }
  return { root: printed, blocks }
}

// ---------------------------------------------------------------------------
// Direct @ipld/unixfs helpers (same settings shape as ipfs-car/unixfs.js)
// ---------------------------------------------------------------------------

function settingsFor (chunkSize, maxLinks) {
  return UnixFS.configure({
    fileChunkEncoder: raw,
    smallFileEncoder: raw,
    chunker: withMaxChunkSize(chunkSize),
    fileLayout: withWidth(maxLinks)
  })
}

// ipfs-car reads files with fs.createReadStream (64 KiB pieces) and writes
// each piece into the UnixFS file writer; mirror that exactly.
const WRITE_PIECE = 64 * 1024

/** Encode one file; returns {cid, dagByteLength, blocks:[{cid, bytes}]} in emission order. */
async function encodeFileDirect (bytes, settings, piece = WRITE_PIECE) {
  const { readable, writable } = new TransformStream({}, UnixFS.withCapacity())
  const blocks = []
  const collecting = (async () => {
    const reader = readable.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      blocks.push(value)
    }
  })()
  const writer = UnixFS.createWriter({ writable, settings })
  const file = UnixFS.createFileWriter(writer)
  for (let off = 0; off < bytes.length; off += piece) {
    await file.write(bytes.subarray(off, off + piece))
  }
  const link = await file.close()
  await writer.close()
  await collecting
  return { cid: link.cid.toString(), dagByteLength: link.dagByteLength, blocks }
}

/** Encode a tree {name: Uint8Array | subtree} as a UnixFS directory, ipfs-car style. */
async function encodeTreeDirect (tree, settings) {
  const { readable, writable } = new TransformStream({}, UnixFS.withCapacity())
  const collecting = (async () => { const r = readable.getReader(); while (!(await r.read()).done); })()
  const writer = UnixFS.createWriter({ writable, settings })
  const build = async node => {
    if (node instanceof Uint8Array) {
      const f = UnixFS.createFileWriter(writer)
      if (node.length) await f.write(node)
      return f.close()
    }
    const dir = UnixFS.createDirectoryWriter(writer)
    for (const [name, child] of Object.entries(node)) dir.set(name, await build(child))
    return dir.close()
  }
  const link = await build(tree)
  await writer.close()
  await collecting
  return link.cid.toString()
}

// ---------------------------------------------------------------------------
// Work
// ---------------------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'schoolmesh-unixfs-'))
const notes = []
const timings = {}
log(`tools: ipfs-car ${versions.ipfsCar}, @ipld/unixfs ${versions.unixfs}, multiformats ${versions.multiformats}; tmp ${tmp}`)

try {
  const files = []

  // --- default profile, real CLI, --no-wrap -------------------------------
  const DEFAULT_CASES = [
    { name: 'empty', size: 0, seed: 0 },
    { name: 'one-byte', size: 1, seed: 65 },
    { name: 'chunk-minus-1', size: MiB - 1, seed: 0 },
    { name: 'one-chunk', size: MiB, seed: 0 },
    { name: 'chunk-plus-1', size: MiB + 1, seed: 0 },
    { name: 'three-chunks-plus-12345', size: 3 * MiB + 12345, seed: 0 },
    { name: 'three-level-1025MiB-plus-1', size: 1025 * MiB + 1, seed: 0, big: true }
  ].filter(c => !(c.big && process.env.GEN_UNIXFS_SKIP_BIG === '1')) // debugging aid only
  const defaultSettings = settingsFor(MiB, 1024)
  for (const c of DEFAULT_CASES) {
    const input = path.join(tmp, 'files', `${c.name}.bin`)
    const car = path.join(tmp, 'files', `${c.name}.car`)
    let t0 = Date.now()
    writePatternFile(input, c.size, c.seed)
    const tWrite = Date.now() - t0
    t0 = Date.now()
    const { root } = pack(input, car, ['--no-wrap'], { listBlocks: false })
    const tPack = Date.now() - t0
    t0 = Date.now()
    const blocks = ipfsCar('blocks', car).trim().split('\n').filter(Boolean)
    const tBlocks = Date.now() - t0
    assert(blocks[blocks.length - 1] === root, `${c.name}: root is last block`)
    if (c.big) {
      timings[c.name] = { write_ms: tWrite, pack_ms: tPack, blocks_ms: tBlocks }
      log(`${c.name}: write ${tWrite} ms, pack ${tPack} ms, blocks ${tBlocks} ms`)
      // 1026 leaves -> 2 parents -> root
      assert(blocks.length === 1026 + 2 + 1, `${c.name}: expected 1029 blocks, got ${blocks.length}`)
      const carBlocks = readCar(car)
      assert(JSON.stringify(carBlocks.map(b => b.cid.toString())) === JSON.stringify(blocks), `${c.name}: CAR walk == ipfs-car blocks`)
      assert(checkTsizes(carBlocks, root, c.name) === carBlocks.reduce((n, b) => n + b.length, 0), `${c.name}: root Tsize covers every block`)
      const rootNode = dagPB.decode(carBlocks[carBlocks.length - 1].bytes)
      const fanout = rootNode.Links.map(l => dagPB.decode(carBlocks.find(b => b.cid.equals(l.Hash)).bytes).Links.length)
      assert(JSON.stringify(fanout) === '[1024,2]', `${c.name}: root -> [node(1024 leaves), node(2 leaves)], got ${fanout}`)
      fs.rmSync(input)
      fs.rmSync(car)
      files.push({ name: c.name, size: c.size, seed: c.seed, chunk_size: MiB, max_links: 1024, cid: root, blocks: null, block_count: blocks.length })
    } else {
      // self-check: direct @ipld/unixfs with ipfs-car's default settings == CLI
      const direct = await encodeFileDirect(fs.readFileSync(input), defaultSettings)
      assert(direct.cid === root, `${c.name}: direct ${direct.cid} != CLI ${root}`)
      assert(JSON.stringify(direct.blocks.map(b => b.cid.toString())) === JSON.stringify(blocks), `${c.name}: direct block order != CAR order`)
      checkTsizes(readCar(car), root, c.name)
      files.push({ name: c.name, size: c.size, seed: c.seed, chunk_size: MiB, max_links: 1024, cid: root, blocks, block_count: blocks.length })
      fs.rmSync(input)
      fs.rmSync(car)
    }
    log(`file ${c.name} (${c.size}) -> ${root} [${blocks.length} blocks]`)
  }

  // --- small parameters, @ipld/unixfs directly -----------------------------
  const SMALL_CASES = [
    ...[0, 1, 256, 257, 1024, 1025, 4096, 4097, 25600].map(size => ({ size, chunk: 256, width: 4 })),
    ...[10000, 10001].map(size => ({ size, chunk: 1000, width: 3 }))
  ]
  const smallResults = {}
  for (const c of SMALL_CASES) {
    const name = `c${c.chunk}-w${c.width}-size-${c.size}`
    const bytes = patternBytes(0, c.size, 1)
    const settings = settingsFor(c.chunk, c.width)
    const r = await encodeFileDirect(bytes, settings)
    const blocks = r.blocks.map(b => b.cid.toString())
    assert(blocks[blocks.length - 1] === r.cid, `${name}: root is the last emitted block`)
    // Order-independence of the CID (not of the block order, see notes).
    for (const piece of [1, 7, c.chunk, c.chunk + 1]) {
      const alt = await encodeFileDirect(bytes, settings, piece)
      assert(alt.cid === r.cid, `${name}: CID depends on write piece size ${piece}`)
      assert(JSON.stringify([...blocks].sort()) === JSON.stringify(alt.blocks.map(b => b.cid.toString()).sort()), `${name}: block set depends on write piece size`)
    }
    smallResults[name] = r
    files.push({ name, size: c.size, seed: 1, chunk_size: c.chunk, max_links: c.width, cid: r.cid, blocks, block_count: blocks.length })
    log(`file ${name} -> ${r.cid} [${blocks.length} blocks]`)
  }

  // --- directories, real CLI, default wrap -----------------------------------
  const DIR_CASES = [
    { name: 'single-file', entries: [{ path: 'lesson.txt', size: 100, seed: 2 }] },
    {
      name: 'flat',
      entries: [
        { path: 'a.txt', size: 10, seed: 3 },
        { path: 'b.txt', size: 0, seed: 0 },
        { path: 'C.md', size: 2000000, seed: 4 }
      ]
    },
    {
      name: 'nested-non-ascii',
      entries: [
        { path: '数学/第一课 分数.txt', size: 1500, seed: 5 },
        { path: '数学/练习/习题一.md', size: 3000000, seed: 6 },
        { path: 'English/lesson 1.txt', size: 42, seed: 7 },
        { path: 'Ünïcödé/é.txt', size: 7, seed: 8 },
        { path: 'readme.txt', size: 5, seed: 9 }
      ]
    },
    {
      name: 'deep',
      entries: [
        { path: 'x/y/z/w/file.bin', size: 1048577, seed: 10 },
        { path: 'top.txt', size: 1, seed: 11 }
      ]
    }
  ]
  const directories = []
  const dirRootLinks = {}
  for (const d of DIR_CASES) {
    const dir = path.join(tmp, 'dirs', d.name)
    fs.mkdirSync(dir, { recursive: true })
    const entries = d.entries.map(e => ({ ...e, path: e.path.normalize('NFC') }))
    for (const e of entries) writePatternFile(path.join(dir, ...e.path.split('/')), e.size, e.seed)
    const car = path.join(tmp, 'dirs', `${d.name}.car`)
    const { root, blocks } = pack(dir, car)
    // Check the root directory's links (name bytes order, Tsize).
    const carBlocks = readCar(car)
    const rootBlock = carBlocks.find(b => b.cid.toString() === root)
    const rootNode = dagPB.decode(rootBlock.bytes)
    assert(toHex(rootNode.Data) === '0801', `${d.name}: root is a plain UnixFS Directory without metadata`)
    dirRootLinks[d.name] = { blockHex: toHex(rootBlock.bytes), links: rootNode.Links.map(l => `${l.Name} -> ${l.Hash} (Tsize ${l.Tsize})`) }
    const names = rootNode.Links.map(l => l.Name)
    const byteSorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    assert(JSON.stringify(names) === JSON.stringify(byteSorted), `${d.name}: links sorted by UTF-8 bytes`)
    checkTsizes(carBlocks, root, d.name)
    assert(blocks.length === carBlocks.length, `${d.name}: block count`)

    const fileCids = {}
    for (const e of entries) {
      const fcar = path.join(tmp, 'dirs', 'file.car')
      fileCids[e.path] = pack(path.join(dir, ...e.path.split('/')), fcar, ['--no-wrap']).root
      fs.rmSync(fcar)
      // The file's CID inside the packed directory must equal its --no-wrap CID.
      const ls = ipfsCar('ls', car, '--verbose')
      assert(ls.includes(fileCids[e.path]), `${d.name}: ${e.path} CID appears in directory listing`)
    }
    directories.push({ name: d.name, entries, root_cid: root, file_cids: fileCids })
    log(`dir ${d.name} -> ${root}`)
  }

  // --- behaviour checks feeding "notes" --------------------------------------
  const probe = path.join(tmp, 'probe')
  const probeCar = path.join(tmp, 'probe.car')
  const packRoot = (target, flags = []) => pack(target, probeCar, flags).root

  // (a) DIR whose only content is sub/ with two files.
  writePatternFile(path.join(probe, 'a', 'sub', 'one.txt'), 3, 1)
  writePatternFile(path.join(probe, 'a', 'sub', 'two.txt'), 4, 2)
  writePatternFile(path.join(probe, 'a-flat', 'one.txt'), 3, 1)
  writePatternFile(path.join(probe, 'a-flat', 'two.txt'), 4, 2)
  const subOnlyRoot = packRoot(path.join(probe, 'a'))
  const flatRoot = packRoot(path.join(probe, 'a-flat'))
  const unstripped = await encodeTreeDirect({ sub: { 'one.txt': patternBytes(0, 3, 1), 'two.txt': patternBytes(0, 4, 2) } }, defaultSettings)
  const strippedDirect = await encodeTreeDirect({ 'one.txt': patternBytes(0, 3, 1), 'two.txt': patternBytes(0, 4, 2) }, defaultSettings)
  assert(strippedDirect === flatRoot, 'direct directory encoder matches CLI')
  const subStripped = subOnlyRoot === flatRoot
  assert(subOnlyRoot === flatRoot || subOnlyRoot === unstripped, 'sub-only root is one of the two expected shapes')

  // Also: a single subfolder holding a single file.
  writePatternFile(path.join(probe, 'a1', 'sub', 'only.txt'), 3, 1)
  const subSingleRoot = packRoot(path.join(probe, 'a1'))
  const subSingleExpected = await encodeTreeDirect({ 'only.txt': patternBytes(0, 3, 1) }, defaultSettings)

  // (b) dotfiles / dot-directories.
  writePatternFile(path.join(probe, 'b', 'visible.txt'), 5, 1)
  writePatternFile(path.join(probe, 'b-plain', 'visible.txt'), 5, 1)
  writePatternFile(path.join(probe, 'b', '.hidden'), 6, 2)
  writePatternFile(path.join(probe, 'b', '.git', 'config'), 7, 3)
  const dotRoot = packRoot(path.join(probe, 'b'))
  const plainRoot = packRoot(path.join(probe, 'b-plain'))
  const dotRootHidden = packRoot(path.join(probe, 'b'), ['--hidden'])
  const dotSkipped = dotRoot === plainRoot
  const dotHiddenExpected = await encodeTreeDirect({
    '.git': { config: patternBytes(0, 7, 3) },
    '.hidden': patternBytes(0, 6, 2),
    'visible.txt': patternBytes(0, 5, 1)
  }, defaultSettings)
  // A dotfile given directly as the pack argument.
  const dotArgRoot = packRoot(path.join(probe, 'b', '.hidden'), ['--no-wrap'])

  // (c) empty directories.
  fs.mkdirSync(path.join(probe, 'c-empty'), { recursive: true })
  const emptyDirRoot = packRoot(path.join(probe, 'c-empty'))
  writePatternFile(path.join(probe, 'c', 'f.txt'), 5, 1)
  fs.mkdirSync(path.join(probe, 'c', 'empty-sub'), { recursive: true })
  writePatternFile(path.join(probe, 'c-plain', 'f.txt'), 5, 1)
  const withEmptySubRoot = packRoot(path.join(probe, 'c'))
  const cPlainRoot = packRoot(path.join(probe, 'c-plain'))
  const emptyDirDirect = await encodeTreeDirect({}, defaultSettings)

  // (d) single file with default --wrap.
  const lessonPath = path.join(tmp, 'dirs', 'single-file', 'lesson.txt')
  const wrappedFileRoot = packRoot(lessonPath)
  const singleFileDirRoot = directories.find(d => d.name === 'single-file').root_cid

  // Example encodings for byte-level debugging.
  const ex257 = smallResults['c256-w4-size-257']
  const ex257Root = ex257.blocks[ex257.blocks.length - 1]
  const exEmpty = files.find(f => f.name === 'empty')
  const piecesDemo = []
  {
    const bytes = patternBytes(0, 4097, 1)
    const settings = settingsFor(256, 4)
    const label = blocks => blocks.map(b => (b.cid.code === raw.code ? 'L' : 'N')).join('')
    piecesDemo.push(`whole-file write: ${label((await encodeFileDirect(bytes, settings)).blocks)}`)
    piecesDemo.push(`256-byte writes: ${label((await encodeFileDirect(bytes, settings, 256)).blocks)}`)
  }

  notes.push(
    `Tool versions: ipfs-car ${versions.ipfsCar}, @ipld/unixfs ${versions.unixfs}, multiformats ${versions.multiformats} (tests/js/package-lock.json). All CIDs are CIDv1 base32, sha2-256; leaves use the raw codec (0x55, bafk...), file/dir nodes dag-pb (0x70, bafy...).`,
    'Settings used by ipfs-car 3.1.0 (unixfs.js): UnixFS.configure({fileChunkEncoder: raw, smallFileEncoder: raw, chunker: withMaxChunkSize(1048576), fileLayout: withWidth(1024)}); hasher sha256, CIDv1. Small-parameter cases use the same object with other withMaxChunkSize/withWidth values.',
    'Default-profile "files" cases come from the real CLI: `ipfs-car pack FILE --no-wrap --output x.car` (root printed on stdout, cross-checked with `ipfs-car roots x.car`), blocks from `ipfs-car blocks x.car` in CAR order. The generator also re-encodes every one of them with @ipld/unixfs directly and asserts identical root CID and identical block order, so the small-parameter cases use the same code path as the CLI.',
    'Block order for the small-parameter cases: the blocks are read off the @ipld/unixfs writer stream (UnixFS.createWriter -> TransformStream readable) in emission order, with the file bytes written to the file writer in 64 KiB pieces exactly like ipfs-car does (fs.createReadStream -> Readable.toWeb), i.e. each small file here arrives in a single write. The last block is always the root.',
    `Block ORDER is not canonical: @ipld/unixfs emits blocks in an order that depends on how the input is split into write() calls (the CIDs and the set of blocks do not; the generator asserts that for write pieces of 1, 7, chunk, chunk+1 bytes). Example c256-w4-size-4097 (L = raw leaf, N = dag-pb node): ${piecesDemo.join('; ')}. Compare block lists as sets (plus "root is last") unless you reproduce this scheduling.`,
    'Leaf/tree shape: fixed-size chunks of chunk_size bytes (last one shorter). 0 or 1 chunk -> the file CID is the raw leaf CID itself (no dag-pb wrapper). >1 chunk -> balanced tree of dag-pb File nodes with at most max_links children; the tree is only as deep as needed, and a trailing partial group gets its own node chain up to the current depth (e.g. 1026 leaves with width 1024 -> [node(1024 leaves), node(2 leaves)] -> root: 1029 blocks).',
    `Empty file (0 bytes): CID is the raw-codec CID of the empty byte string, ${exEmpty.cid}, and the CAR holds exactly that one (empty) block.`,
    `dag-pb File node encoding (see example): PBNode with Links first (field 2), then Data (field 1). Each link has Hash, Name = "" (present, zero-length) and Tsize; Data = UnixFS Data{Type=File(2), filesize, blocksizes[] (content bytes per child, NOT packed: one 0x20 tag per value)}, no Data bytes field, no mode/mtime. Example c256-w4-size-257 root ${ex257Root.cid} bytes (hex): ${toHex(ex257Root.bytes)}`,
    'Tsize (verified by the generator on every link of every directory CAR): Tsize of a link = total encoded size of the linked sub-DAG = length of the linked block + sum of the Tsize of its own links; for a raw leaf it is the leaf length. So a file link in a directory has Tsize = root block length + all leaf bytes (+ intermediate node blocks), and a 1-chunk or empty file has Tsize = its size.',
    'Directory nodes: dag-pb with Data = UnixFS Data{Type=Directory(1)} (bytes 0801), no mode/mtime, links named with the entry name. Links are sorted by the raw UTF-8 bytes of the name (dag-pb prepare), so uppercase sorts before lowercase ("C.md" < "a.txt" < "b.txt") and ASCII before non-ASCII. Names are used exactly as readdir returns them (no Unicode normalisation by the tool; the vectors use NFC names on disk).',
    ...Object.entries(dirRootLinks).map(([name, r]) => `Directory "${name}" root links: ${r.links.join('; ')}. Root block hex: ${r.blockHex}`),
    'Directory entries that are subdirectories get their own dag-pb Directory node. Not exercised here: per ipfs-car 3.1.0 source (unixfs.js, SHARD_THRESHOLD = 1000) a directory with more than 1000 entries becomes a HAMT shard instead.',
    'CAR block order for directories (informative): ipfs-car builds the tree from files-from-path output sorted by JS string comparison (UTF-16 code units) of the relative path and finalizes each directory by visiting entries in that insertion order (depth-first, children before parents). The links inside each node are nevertheless byte-sorted.',
    `files-from-path common-prefix stripping (checked): a DIR whose only content is sub/ with one.txt and two.txt packs to ${subOnlyRoot}, ${subStripped ? 'IDENTICAL to' : 'DIFFERENT from'} packing a DIR that holds one.txt and two.txt directly (${flatRoot}); a directory {sub: {one.txt, two.txt}} would have been ${unstripped}. ${subStripped ? 'So "sub" IS stripped' : 'So "sub" is NOT stripped'}: the wrapping root is built from paths relative to the longest common directory prefix of all files found, and the DIR name itself never appears. Likewise DIR/sub/only.txt alone packs to ${subSingleRoot} = {only.txt} (${subSingleRoot === subSingleExpected ? 'confirmed' : 'NOT equal to ' + subSingleExpected}).`,
    `Hidden files (checked): without --hidden, entries whose basename starts with "." (files and whole directories such as .git/) are skipped: DIR{visible.txt, .hidden, .git/config} packs to ${dotRoot}, ${dotSkipped ? 'identical to' : 'DIFFERENT from'} DIR{visible.txt} (${plainRoot}). With -H/--hidden it packs to ${dotRootHidden} (${dotRootHidden === dotHiddenExpected ? 'equal to' : 'NOT equal to'} the direct encoding of all three entries). A dotfile passed directly as the pack argument is skipped too, leaving no files: \`pack .hidden --no-wrap\` gives ${dotArgRoot}${dotArgRoot === emptyDirDirect ? ' (the empty directory!)' : ''}.`,
    `Empty directories (checked): files-from-path only yields files, so empty directories vanish: DIR{f.txt, empty-sub/} packs to ${withEmptySubRoot}, ${withEmptySubRoot === cPlainRoot ? 'identical to' : 'DIFFERENT from'} DIR{f.txt} (${cPlainRoot}). Packing a completely empty DIR gives the empty UnixFS directory ${emptyDirRoot}${emptyDirRoot === emptyDirDirect ? '' : ' (differs from direct empty dir ' + emptyDirDirect + ')'}.`,
    `Single file with default --wrap: \`ipfs-car pack lesson.txt\` gives ${wrappedFileRoot}, ${wrappedFileRoot === singleFileDirRoot ? 'identical to' : 'DIFFERENT from'} the "single-file" directory case (a directory with one link named after the file's basename).`,
    'Every directory case also asserts that each file\'s --no-wrap CID appears as that file\'s CID inside the packed directory (ipfs-car ls --verbose), i.e. file CIDs do not depend on being inside a directory.'
  )

  const output = {
    generator: 'specs/vectors/gen_unixfs.mjs',
    tool: `ipfs-car ${versions.ipfsCar} / @ipld/unixfs ${versions.unixfs}`,
    pattern: PATTERN,
    files,
    directories,
    notes
  }
  process.stdout.write(JSON.stringify(output, null, 2) + '\n')
  log('timings', JSON.stringify(timings))
} finally {
  fs.rmSync(tmp, { recursive: true, force: true })
}
