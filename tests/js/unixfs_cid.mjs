// Prints the CID that Kubo's default `ipfs add` gives for each file named on the command line,
// computed by the independent JS UnixFS importer; the Python tests compare ehr.storage against it.
//
// usage: node unixfs_cid.mjs [--cid-version=0|1] FILE [FILE ...]   (one CID per line, in order)
//
// --cid-version=0 (default) mirrors `ipfs add`: fixed 262144-byte chunks, balanced layout with at
// most 174 links per node, dag-pb leaves of UnixFS type `file`, a single leaf reduced to itself.
// --cid-version=1 mirrors `ipfs add --cid-version=1`, which in Kubo implies raw leaves (a
// single-chunk file is then a raw-codec CID); everything else stays as for version 0.
import { createReadStream } from 'node:fs'
import { MemoryBlockstore } from 'blockstore-core'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

function parseArgs (argv) {
  let cidVersion = 0
  const files = []
  for (const arg of argv) {
    const match = /^--cid-version=([01])$/.exec(arg)
    if (match != null) {
      cidVersion = Number(match[1])
    } else if (arg.startsWith('--')) {
      throw new Error(`unknown option ${arg}`)
    } else {
      files.push(arg)
    }
  }
  if (files.length === 0) {
    throw new Error('usage: node unixfs_cid.mjs [--cid-version=0|1] FILE [FILE ...]')
  }
  return { cidVersion, files }
}

function kuboOptions (cidVersion) {
  return {
    cidVersion,
    rawLeaves: cidVersion === 1,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    wrapWithDirectory: false
  }
}

async function cidOf (path, options) {
  // A fresh store per file: only `put` is used, and memory is released between files.
  const blockstore = new MemoryBlockstore()
  let last
  for await (const entry of importer([{ content: createReadStream(path) }], blockstore, options)) {
    last = entry
  }
  return last.cid.toString()
}

const { cidVersion, files } = parseArgs(process.argv.slice(2))
for (const path of files) {
  process.stdout.write(`${await cidOf(path, kuboOptions(cidVersion))}\n`)
}
