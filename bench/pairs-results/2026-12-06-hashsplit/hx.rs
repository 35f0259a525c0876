// The hashing-thread experiment of bench/NOTES.md (2026-12-06): a bare receiver of one
// upload, built on its own (a crate with sha2 0.11 only), never part of switchboard.
//   hx inline|one|two ADDR OUT  (then: socat -u -b 131072 OPEN:SRC TCP:ADDR)
// mode: inline (hash+write in the receiving thread), one (one thread hashes+writes), two (hash thread and write thread)
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::sync::{mpsc, Arc};
const CHUNK: usize = 256 * 1024;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mode = a[1].clone();
    let l = std::net::TcpListener::bind(&a[2]).unwrap();
    let (mut s, _) = l.accept().unwrap();
    let mut f = std::fs::File::create(&a[3]).unwrap();
    let t0 = std::time::Instant::now();
    let mut total = 0usize;
    let fill = |s: &mut std::net::TcpStream, buf: &mut Vec<u8>| -> usize {
        buf.resize(CHUNK, 0); let mut got = 0;
        while got < CHUNK { let n = s.read(&mut buf[got..]).unwrap(); if n == 0 { break; } got += n; }
        buf.truncate(got); got };
    let digest = match mode.as_str() {
        "inline" => { let mut h = Sha256::new(); let mut buf = Vec::new();
            loop { let n = fill(&mut s, &mut buf); if n == 0 { break; } total += n; h.update(&buf); f.write_all(&buf).unwrap(); } h.finalize() }
        "one" => { let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4); let (btx, brx) = mpsc::channel::<Vec<u8>>();
            for _ in 0..4 { btx.send(Vec::with_capacity(CHUNK)).unwrap(); }
            let w = std::thread::spawn(move || { let mut h = Sha256::new(); for b in rx { h.update(&b); f.write_all(&b).unwrap(); let _ = btx.send(b); } h.finalize() });
            loop { let mut buf = brx.recv().unwrap(); let n = fill(&mut s, &mut buf); if n == 0 { break; } total += n; tx.send(buf).unwrap(); }
            drop(tx); w.join().unwrap() }
        _ => { let (htx, hrx) = mpsc::sync_channel::<Arc<Vec<u8>>>(4); let (wtx, wrx) = mpsc::sync_channel::<Arc<Vec<u8>>>(4);
            let hh = std::thread::spawn(move || { let mut h = Sha256::new(); for b in hrx { h.update(&b[..]); } h.finalize() });
            let ww = std::thread::spawn(move || { for b in wrx { f.write_all(&b[..]).unwrap(); } });
            loop { let mut buf = Vec::new(); let n = fill(&mut s, &mut buf); if n == 0 { break; } total += n; let b = Arc::new(buf); htx.send(b.clone()).unwrap(); wtx.send(b).unwrap(); }
            drop(htx); drop(wtx); ww.join().unwrap(); hh.join().unwrap() }
    };
    let e = t0.elapsed().as_secs_f64();
    let ru = std::fs::read_to_string("/proc/self/stat").unwrap(); let fl: Vec<&str> = ru.rsplit(')').next().unwrap().split(' ').collect();
    let cpu = (fl[12].parse::<f64>().unwrap() + fl[13].parse::<f64>().unwrap()) / 100.0;
    println!("{{\"mode\":\"{mode}\",\"mib_per_s\":{:.1},\"cpu_ns_per_byte\":{:.3},\"sha0\":{}}}", total as f64 / e / 1048576.0, cpu * 1e9 / total as f64, digest[0]);
}
