// libp2p 3 / Helia 7 call Promise.withResolvers (Node >= 22); Node 20 lacks it. Loaded with
// `node --import ./polyfill.mjs ...` (shared/FACTS.md); does nothing on Node >= 22.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () { let resolve, reject; const promise = new this((res, rej) => { resolve = res; reject = rej }); return { promise, resolve, reject } }
}
