//! The BFD Control packet (RFC 5880 section 4.1): decoding with the
//! stateless checks of section 6.8.6, encoding into `BytesMut`.

use bytes::{BufMut, BytesMut};
use nom::number::complete::{be_u32, be_u8};
use nom::IResult;

/// Length of a Control packet without authentication.
pub const CONTROL_LEN: usize = 24;

/// Session states as carried in the `Sta` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BfdState {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl BfdState {
    fn from_bits(b: u8) -> BfdState {
        match b & 3 {
            0 => BfdState::AdminDown,
            1 => BfdState::Down,
            2 => BfdState::Init,
            _ => BfdState::Up,
        }
    }
}

impl std::fmt::Display for BfdState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BfdState::AdminDown => "AdminDown",
            BfdState::Down => "Down",
            BfdState::Init => "Init",
            BfdState::Up => "Up",
        })
    }
}

/// Diagnostic codes (RFC 5880 section 4.1).
pub mod diag {
    pub const NONE: u8 = 0;
    pub const DETECTION_TIME_EXPIRED: u8 = 1;
    pub const ECHO_FAILED: u8 = 2;
    pub const NEIGHBOR_DOWN: u8 = 3;
    pub const FORWARDING_RESET: u8 = 4;
    pub const PATH_DOWN: u8 = 5;
    pub const CONCATENATED_PATH_DOWN: u8 = 6;
    pub const ADMIN_DOWN: u8 = 7;
    pub const REVERSE_CONCATENATED_PATH_DOWN: u8 = 8;

    /// A human-readable name.
    pub fn describe(d: u8) -> &'static str {
        match d {
            NONE => "no diagnostic",
            DETECTION_TIME_EXPIRED => "control detection time expired",
            ECHO_FAILED => "echo function failed",
            NEIGHBOR_DOWN => "neighbor signaled session down",
            FORWARDING_RESET => "forwarding plane reset",
            PATH_DOWN => "path down",
            CONCATENATED_PATH_DOWN => "concatenated path down",
            ADMIN_DOWN => "administratively down",
            REVERSE_CONCATENATED_PATH_DOWN => "reverse concatenated path down",
            _ => "unknown diagnostic",
        }
    }
}

/// A Control packet. Intervals are in microseconds, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: u8,
    pub state: BfdState,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a received packet was discarded (RFC 5880 section 6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("shorter than {CONTROL_LEN} octets")]
    Truncated,
    #[error("version {0} (not 1)")]
    Version(u8),
    #[error("length field {0} too small")]
    LengthTooSmall(u8),
    #[error("length field {field} exceeds the {payload} octets received")]
    LengthTooLarge { field: u8, payload: usize },
    #[error("detect multiplier zero")]
    ZeroDetectMult,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("my discriminator zero")]
    ZeroMyDiscriminator,
    #[error("authentication present but not configured")]
    Authentication,
}

/// The fixed part: four octets, then five 32-bit fields.
type Header = ([u8; 4], [u32; 5]);

fn header(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, b0) = be_u8(i)?;
    let (i, b1) = be_u8(i)?;
    let (i, mult) = be_u8(i)?;
    let (i, len) = be_u8(i)?;
    let (i, my) = be_u32(i)?;
    let (i, your) = be_u32(i)?;
    let (i, tx) = be_u32(i)?;
    let (i, rx) = be_u32(i)?;
    let (i, echo) = be_u32(i)?;
    Ok((i, ([b0, b1, mult, len], [my, your, tx, rx, echo])))
}

impl ControlPacket {
    /// Decode a UDP payload, with the checks of RFC 5880 section 6.8.6
    /// that need no session (the discriminator lookup is the session's).
    pub fn decode(buf: &[u8]) -> Result<ControlPacket, PacketError> {
        if buf.len() < 4 {
            return Err(PacketError::Truncated);
        }
        let version = buf[0] >> 5;
        if version != 1 {
            return Err(PacketError::Version(version));
        }
        let auth = buf[1] & 0x04 != 0;
        let len = buf[3];
        if (len as usize) < if auth { CONTROL_LEN + 2 } else { CONTROL_LEN } {
            return Err(PacketError::LengthTooSmall(len));
        }
        if len as usize > buf.len() {
            return Err(PacketError::LengthTooLarge { field: len, payload: buf.len() });
        }
        let (_, ([b0, b1, mult, _], [my, your, tx, rx, echo])) =
            header(&buf[..len as usize]).map_err(|_| PacketError::Truncated)?;
        if mult == 0 {
            return Err(PacketError::ZeroDetectMult);
        }
        if b1 & 0x01 != 0 {
            return Err(PacketError::Multipoint);
        }
        if my == 0 {
            return Err(PacketError::ZeroMyDiscriminator);
        }
        if auth {
            return Err(PacketError::Authentication);
        }
        Ok(ControlPacket {
            diag: b0 & 0x1f,
            state: BfdState::from_bits(b1 >> 6),
            poll: b1 & 0x20 != 0,
            final_: b1 & 0x10 != 0,
            control_plane_independent: b1 & 0x08 != 0,
            demand: b1 & 0x02 != 0,
            detect_mult: mult,
            my_discr: my,
            your_discr: your,
            desired_min_tx_us: tx,
            required_min_rx_us: rx,
            required_min_echo_rx_us: echo,
        })
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(CONTROL_LEN);
        out.put_u8((1 << 5) | (self.diag & 0x1f));
        let flags = ((self.state as u8) << 6)
            | (u8::from(self.poll) << 5)
            | (u8::from(self.final_) << 4)
            | (u8::from(self.control_plane_independent) << 3)
            | (u8::from(self.demand) << 1);
        out.put_u8(flags);
        out.put_u8(self.detect_mult);
        out.put_u8(CONTROL_LEN as u8);
        out.put_u32(self.my_discr);
        out.put_u32(self.your_discr);
        out.put_u32(self.desired_min_tx_us);
        out.put_u32(self.required_min_rx_us);
        out.put_u32(self.required_min_echo_rx_us);
    }

    pub fn to_bytes(&self) -> BytesMut {
        let mut b = BytesMut::with_capacity(CONTROL_LEN);
        self.encode(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ControlPacket {
        ControlPacket {
            diag: diag::NONE,
            state: BfdState::Down,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discr: 0x0102_0304,
            your_discr: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn golden_bytes() {
        // An FRR bfdd packet (Up, P clear, mult 3, 300 ms / 300 ms, echo 50 ms).
        let wire = hex::decode("20c0031800000001abcdef01000493e0000493e00000c350").unwrap();
        let p = ControlPacket::decode(&wire).unwrap();
        assert_eq!(p.state, BfdState::Up);
        assert_eq!(p.detect_mult, 3);
        assert_eq!(p.my_discr, 1);
        assert_eq!(p.your_discr, 0xabcd_ef01);
        assert_eq!(p.desired_min_tx_us, 300_000);
        assert_eq!(p.required_min_rx_us, 300_000);
        assert_eq!(p.required_min_echo_rx_us, 50_000);
        assert!(!p.poll && !p.final_);
        assert_eq!(&p.to_bytes()[..], &wire[..]);
    }

    #[test]
    fn round_trip_flags() {
        for state in [BfdState::AdminDown, BfdState::Down, BfdState::Init, BfdState::Up] {
            for (poll, final_) in [(false, false), (true, false), (false, true)] {
                let p = ControlPacket { state, poll, final_, diag: diag::NEIGHBOR_DOWN, ..sample() };
                let b = p.to_bytes();
                assert_eq!(b.len(), CONTROL_LEN);
                assert_eq!(ControlPacket::decode(&b), Ok(p));
            }
        }
    }

    #[test]
    fn validation() {
        let good = sample().to_bytes().to_vec();
        let bad = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            ControlPacket::decode(&b).unwrap_err()
        };
        assert_eq!(bad(&|b| b[0] = 0x40), PacketError::Version(2));
        assert_eq!(bad(&|b| b[3] = 20), PacketError::LengthTooSmall(20));
        assert_eq!(bad(&|b| b[3] = 30), PacketError::LengthTooLarge { field: 30, payload: 24 });
        assert_eq!(bad(&|b| b[2] = 0), PacketError::ZeroDetectMult);
        assert_eq!(bad(&|b| b[1] |= 1), PacketError::Multipoint);
        assert_eq!(bad(&|b| b[4..8].copy_from_slice(&[0; 4])), PacketError::ZeroMyDiscriminator);
        assert_eq!(bad(&|b| b[1] |= 4), PacketError::LengthTooSmall(24));
        assert_eq!(
            bad(&|b| {
                b[1] |= 4;
                b[3] = 26;
                b.extend_from_slice(&[1, 2]);
            }),
            PacketError::Authentication
        );
        assert_eq!(bad(&|b| b.truncate(3)), PacketError::Truncated);
        assert_eq!(bad(&|b| b.truncate(23)), PacketError::LengthTooLarge { field: 24, payload: 23 });
        // Trailing octets beyond the length field are ignored.
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; 8]);
        assert_eq!(ControlPacket::decode(&longer), Ok(sample()));
    }
}
