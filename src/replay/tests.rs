//! Hand-built capture bytes for the unit tests: pcap and pcapng files in
//! either byte order, and IPv4/IPv6 TCP and UDP packets, written here from
//! the formats' specifications rather than by the code under test.

/// A pcapng file under construction: one section.
pub struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    pub fn new(big: bool) -> Self {
        let mut ng = Ng {
            big,
            out: Vec::new(),
        };
        let mut body = Vec::new();
        body.extend_from_slice(&ng.u32(0x1A2B_3C4D));
        body.extend_from_slice(&ng.u16(1));
        body.extend_from_slice(&ng.u16(0));
        body.extend_from_slice(&(-1i64).to_le_bytes());
        ng.block(0x0A0D_0D0A, &body);
        ng
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block with `body` as given (the caller pads it).
    pub fn block(&mut self, kind: u32, body: &[u8]) {
        let total = u32::try_from(body.len() + 12).expect("a small block");
        let (k, t) = (self.u32(kind), self.u32(total));
        self.out.extend_from_slice(&k);
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(&t);
    }

    /// An interface of `link` type, with `if_tsresol` if given.
    pub fn idb(&mut self, link: u16, tsresol: Option<u8>) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16(link));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32(0));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.u16(9));
            body.extend_from_slice(&self.u16(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        self.block(1, &body);
    }

    /// An enhanced packet on interface `id` at `units` of its resolution.
    pub fn epb(&mut self, id: u32, units: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32(id));
        body.extend_from_slice(&self.u32((units >> 32) as u32));
        body.extend_from_slice(&self.u32(units as u32));
        let len = u32::try_from(data.len()).expect("a small packet");
        body.extend_from_slice(&self.u32(len));
        body.extend_from_slice(&self.u32(len));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        self.block(6, &body);
    }

    /// A simple packet (interface 0, no time).
    pub fn spb(&mut self, data: &[u8]) {
        let mut body = Vec::new();
        let len = u32::try_from(data.len()).expect("a small packet");
        body.extend_from_slice(&self.u32(len));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        self.block(3, &body);
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// A classic pcap file of `link` type with (seconds, fraction, data)
/// records; the fraction is in µs, or ns when `nanos`.
pub fn pcap_file(big: bool, nanos: bool, link: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(65_535));
    out.extend_from_slice(&u32b(link));
    for (secs, frac, data) in records {
        let frac = if nanos { frac * 1000 } else { *frac };
        let len = u32::try_from(data.len()).expect("a small packet");
        for v in [*secs, frac, len, len] {
            out.extend_from_slice(&u32b(v));
        }
        out.extend_from_slice(data);
    }
    out
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, body: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + body.len()).expect("a small packet");
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    ip.extend_from_slice(body);
    ip
}

/// A TCP header (no options) and payload.
pub fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// An IPv4 TCP packet; `flags` as on the wire (0x02 SYN, 0x10 ACK, 0x01 FIN).
pub fn ipv4_tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    ipv4(src, dst, 6, &tcp(sport, dport, seq, flags, payload))
}

/// An IPv4 UDP packet.
pub fn ipv4_udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("a small packet");
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ipv4(src, dst, 17, &u)
}

/// An IPv6 TCP packet from [::1]:4000 to [::1]:7, behind a
/// destination-options header when `ext`.
pub fn ipv6_tcp(payload: &[u8], ext: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if ext {
        body.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    }
    body.extend_from_slice(&tcp(4000, 7, 1, 0x18, payload));
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&u16::try_from(body.len()).expect("small").to_be_bytes());
    ip.extend_from_slice(&[if ext { 60 } else { 6 }, 64]);
    let lo = std::net::Ipv6Addr::LOCALHOST.octets();
    ip.extend_from_slice(&lo);
    ip.extend_from_slice(&lo);
    ip.extend_from_slice(&body);
    ip
}

/// A raw-IP (link type 101) pcapng file of `packets`, each at its µs.
pub fn raw_capture(packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut ng = Ng::new(false);
    ng.idb(101, None);
    for (t, p) in packets {
        ng.epb(0, *t, p);
    }
    ng.finish()
}

mod props {
    //! Arbitrary bytes, and valid files with arbitrary damage, never
    //! make the reader panic or allocate without bound.
    use proptest::prelude::*;

    use super::*;
    use crate::replay::{ReadOptions, conversation};

    fn valid() -> Vec<u8> {
        let c = [10, 0, 0, 1];
        let s = [10, 0, 0, 2];
        raw_capture(&[
            (0, ipv4_tcp(c, 4000, s, 7, 100, 0x02, b"")),
            (1, ipv4_tcp(s, 7, c, 4000, 500, 0x12, b"")),
            (2, ipv4_tcp(c, 4000, s, 7, 101, 0x18, b"hello")),
            (3, ipv4_tcp(s, 7, c, 4000, 501, 0x18, b"HELLO")),
            (4, ipv4_tcp(c, 4000, s, 7, 106, 0x11, b"")),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = conversation(&bytes, &ReadOptions::default());
        }

        #[test]
        fn arbitrary_bytes_after_a_magic_never_panic(
            magic in prop_oneof![
                Just(vec![0x0a, 0x0d, 0x0d, 0x0a]),
                Just(vec![0xd4, 0xc3, 0xb2, 0xa1]),
                Just(vec![0xa1, 0xb2, 0x3c, 0x4d]),
            ],
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut file = magic;
            file.extend_from_slice(&bytes);
            let _ = conversation(&file, &ReadOptions::default());
        }

        #[test]
        fn damaged_valid_files_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut file = valid();
            for (at, byte) in edits {
                let i = at.index(file.len());
                file[i] = byte;
            }
            let keep = cut.index(file.len() + 1);
            let _ = conversation(&file[..keep], &ReadOptions::default());
        }
    }

    #[test]
    fn the_valid_file_is_valid() {
        let conv = conversation(&valid(), &ReadOptions::default()).unwrap();
        assert_eq!(conv.segments.len(), 2);
    }
}
