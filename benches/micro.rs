//! Criterion micro benchmarks: template parsing and validation, the run state machine, the
//! fixed-VHD writer and the qcow2 reader (in bytes per second).
//!
//! No network, no root, no external tools: the qcow2 input is written by our own writer into
//! a temporary directory. Run with `cargo bench --bench micro`.

// criterion_group! makes undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use imagebuilder::core::engine::{RunEvent, RunFlags, RunMachine};
use imagebuilder::dist::disk::{open_reader, writer, Chunk, ChunkData, HashingSink, OutputSink};
use imagebuilder::template::model::{DiskFormat, OutputFormat};
use imagebuilder::template::{parse_document, ParseOptions};

const MIB: u64 = 1 << 20;

/// The example templates, one of each input shape and target type.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "quickstart",
        include_str!("../examples/templates/quickstart.json"),
    ),
    (
        "arm-deployment",
        include_str!("../examples/templates/arm-deployment.json"),
    ),
    (
        "every-target",
        include_str!("../examples/templates/every-target.json"),
    ),
    (
        "properties-only",
        include_str!("../examples/templates/properties-only.json"),
    ),
];

fn templates(c: &mut Criterion) {
    let mut group = c.benchmark_group("template_parse_validate");
    let options = ParseOptions::default();
    for (name, text) in TEMPLATES {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let parsed = parse_document(black_box(text), &options);
                black_box(parsed.is_ok())
            })
        });
    }
    group.finish();
}

/// Drives a run through every phase to the end, as the engine does for a template with
/// optimize and validate, then a cancel in the middle of another run.
fn state_machine(c: &mut Criterion) {
    let flags = RunFlags {
        optimize: true,
        validate: true,
        ..RunFlags::default()
    };
    c.bench_function("state_machine/full_run", |b| {
        b.iter(|| {
            let mut machine = RunMachine::new(black_box(flags));
            for event in [
                RunEvent::Start,
                RunEvent::PhaseSucceeded,
                RunEvent::PhaseSucceeded,
                RunEvent::PhaseSucceeded,
                RunEvent::PhaseSucceeded,
                RunEvent::Distributed {
                    succeeded: 2,
                    failed: 0,
                },
            ] {
                machine = machine.next(event).map(|(m, _)| m).unwrap_or(machine);
            }
            black_box(machine)
        })
    });
    c.bench_function("state_machine/cancel", |b| {
        b.iter(|| {
            let mut machine = RunMachine::new(black_box(RunFlags::default()));
            for event in [
                RunEvent::Start,
                RunEvent::PhaseSucceeded,
                RunEvent::CancelRequested,
                RunEvent::CancelRequested,
                RunEvent::WorkStopped,
            ] {
                machine = machine.next(event).map(|(m, _)| m).unwrap_or(machine);
            }
            black_box(machine)
        })
    });
}

/// A sink that keeps nothing: what is measured is the writer, not the file system.
struct Discard;

impl OutputSink for Discard {
    fn write_at(&mut self, _: u64, data: &[u8]) -> std::io::Result<()> {
        black_box(data);
        Ok(())
    }

    fn finish(self: Box<Self>, _: u64) -> std::io::Result<()> {
        Ok(())
    }
}

/// Pseudo-random, incompressible, never-zero bytes (xorshift), the same on every run.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&(state | 0x0101_0101_0101_0101).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The chunks of a `size`-byte disk whose first `data` bytes are noise and the rest zeros,
/// cut as the readers cut them (2 MiB data chunks, one zero run).
fn disk_chunks(size: u64, data: u64) -> Vec<Chunk> {
    let block = Bytes::from(noise(2 * MIB as usize, 7));
    let mut chunks = Vec::new();
    let mut offset = 0;
    while offset < data {
        chunks.push(Chunk {
            offset,
            data: ChunkData::Data(block.clone()),
        });
        offset += block.len() as u64;
    }
    if offset < size {
        chunks.push(Chunk {
            offset,
            data: ChunkData::Zero(size - offset),
        });
    }
    chunks
}

fn write_all(format: OutputFormat, size: u64, chunks: &[Chunk], hashed: bool) -> u64 {
    let sink: Box<dyn OutputSink> = if hashed {
        Box::new(HashingSink::new(Discard).0)
    } else {
        Box::new(Discard)
    };
    let mut w = writer(format, size, sink).expect("writer");
    for chunk in chunks {
        w.write_chunk(chunk).expect("write");
    }
    w.finish().expect("finish")
}

/// The writer alone (sink discards), and with the sha256 that every output of `convert`
/// and of the distributors gets (`HashingSink`): the second is what a conversion costs.
fn vhd_writer(c: &mut Criterion) {
    let mut group = c.benchmark_group("vhd_fixed_writer");
    group.sample_size(10);
    // Dense: every byte is data, so the writer's own work (zero scan, copies) shows.
    let dense = disk_chunks(64 * MIB, 64 * MIB);
    // Sparse: 1 GiB virtual, 64 MiB of data; zero runs cost the writer nothing.
    let sparse = disk_chunks(1024 * MIB, 64 * MIB);
    for hashed in [false, true] {
        let suffix = if hashed { "_sha256" } else { "" };
        group.throughput(Throughput::Bytes(64 * MIB));
        group.bench_function(format!("dense_64MiB{suffix}"), |b| {
            b.iter(|| write_all(OutputFormat::VhdFixed, 64 * MIB, black_box(&dense), hashed))
        });
        group.throughput(Throughput::Bytes(1024 * MIB));
        group.bench_function(format!("sparse_1GiB_64MiB_data{suffix}"), |b| {
            b.iter(|| {
                write_all(
                    OutputFormat::VhdFixed,
                    1024 * MIB,
                    black_box(&sparse),
                    hashed,
                )
            })
        });
    }
    group.finish();
}

/// A qcow2 file written by our own writer: `data` bytes of noise, then zeros, `size` bytes.
struct Qcow2Fixture {
    dir: PathBuf,
    path: PathBuf,
}

impl Qcow2Fixture {
    fn new(size: u64, data: u64) -> Self {
        let dir = std::env::temp_dir().join(format!("imagebuilder-micro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("input.qcow2");
        let sink =
            imagebuilder::dist::disk::FileSink::create(&path).expect("create the qcow2 input");
        let mut w = writer(OutputFormat::Qcow2, size, Box::new(sink)).expect("writer");
        for chunk in disk_chunks(size, data) {
            w.write_chunk(&chunk).expect("write");
        }
        w.finish().expect("finish");
        Self { dir, path }
    }
}

impl Drop for Qcow2Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn qcow2_reader(c: &mut Criterion) {
    let mut group = c.benchmark_group("qcow2_reader");
    group.sample_size(20);
    let size = 1024 * MIB;
    let fixture = Qcow2Fixture::new(size, 128 * MIB);
    // Virtual bytes per second: what a conversion of this disk sees.
    group.throughput(Throughput::Bytes(size));
    group.bench_function("1GiB_virtual_128MiB_data", |b| {
        b.iter_batched(
            || open_reader(&fixture.path, DiskFormat::Qcow2).expect("open"),
            |mut reader| {
                let mut data = 0u64;
                while let Some(chunk) = reader.next_chunk().expect("read") {
                    if let ChunkData::Data(bytes) = &chunk.data {
                        data += bytes.len() as u64;
                    }
                }
                black_box(data)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, templates, state_machine, vhd_writer, qcow2_reader);
criterion_main!(benches);
