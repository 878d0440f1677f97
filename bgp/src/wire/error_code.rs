//! NOTIFICATION error codes and subcodes as data (RFC 4271 section 4.5,
//! RFC 4486 and RFC 8538 / RFC 9384 for Cease, RFC 6608 for FSM errors,
//! RFC 7313 for ROUTE-REFRESH, RFC 9687 for the send hold timer).
//!
//! [`ErrorCode`] is one value per (code, subcode) pair, named where an RFC
//! names it and [`ErrorCode::Unknown`] otherwise, so that every pair on
//! the wire maps to exactly one value and back. `Display` gives the names
//! routers print ("Cease/Administrative Shutdown", "Hold Timer Expired").
//! What a NOTIFICATION carries besides its code is in [`super::Notification`].

use std::fmt;

/// Defines a subcode enum: its variants with their values and names.
macro_rules! subcodes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The subcode with this value, if it has a name.
            pub const fn from_u8(value: u8) -> Option<Self> {
                match value {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// The value on the wire.
            pub const fn to_u8(self) -> u8 {
                match self {
                    $(Self::$variant => $value,)*
                }
            }

            /// The name the RFC gives it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl From<$name> for u8 {
            fn from(s: $name) -> u8 {
                s.to_u8()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

subcodes! {
    /// Subcodes of Message Header Error (code 1).
    HeaderError {
        Unspecific = 0 => "Unspecific",
        ConnectionNotSynchronized = 1 => "Connection Not Synchronized",
        BadMessageLength = 2 => "Bad Message Length",
        BadMessageType = 3 => "Bad Message Type",
    }
}

subcodes! {
    /// Subcodes of OPEN Message Error (code 2).
    OpenError {
        /// Also the subcode of a recognized but malformed optional
        /// parameter or capability (RFC 4271 section 6.2).
        Unspecific = 0 => "Unspecific",
        UnsupportedVersion = 1 => "Unsupported Version Number",
        BadPeerAs = 2 => "Bad Peer AS",
        BadBgpIdentifier = 3 => "Bad BGP Identifier",
        UnsupportedOptionalParameter = 4 => "Unsupported Optional Parameter",
        UnacceptableHoldTime = 6 => "Unacceptable Hold Time",
        /// RFC 5492.
        UnsupportedCapability = 7 => "Unsupported Capability",
        /// RFC 9234.
        RoleMismatch = 11 => "Role Mismatch",
    }
}

subcodes! {
    /// Subcodes of UPDATE Message Error (code 3).
    UpdateError {
        Unspecific = 0 => "Unspecific",
        MalformedAttributeList = 1 => "Malformed Attribute List",
        UnrecognizedWellKnownAttribute = 2 => "Unrecognized Well-known Attribute",
        MissingWellKnownAttribute = 3 => "Missing Well-known Attribute",
        AttributeFlags = 4 => "Attribute Flags Error",
        AttributeLength = 5 => "Attribute Length Error",
        InvalidOrigin = 6 => "Invalid ORIGIN Attribute",
        InvalidNextHop = 8 => "Invalid NEXT_HOP Attribute",
        OptionalAttribute = 9 => "Optional Attribute Error",
        InvalidNetworkField = 10 => "Invalid Network Field",
        MalformedAsPath = 11 => "Malformed AS_PATH",
    }
}

subcodes! {
    /// Subcodes of Finite State Machine Error (code 5, RFC 6608).
    FsmError {
        Unspecified = 0 => "Unspecified Error",
        UnexpectedInOpenSent = 1 => "Receive Unexpected Message in OpenSent State",
        UnexpectedInOpenConfirm = 2 => "Receive Unexpected Message in OpenConfirm State",
        UnexpectedInEstablished = 3 => "Receive Unexpected Message in Established State",
    }
}

subcodes! {
    /// Subcodes of Cease (code 6): RFC 4486, RFC 8538 (Hard Reset),
    /// RFC 9384 (BFD Down).
    Cease {
        MaxPrefixes = 1 => "Maximum Number of Prefixes Reached",
        AdminShutdown = 2 => "Administrative Shutdown",
        PeerDeconfigured = 3 => "Peer De-configured",
        AdminReset = 4 => "Administrative Reset",
        ConnectionRejected = 5 => "Connection Rejected",
        OtherConfigurationChange = 6 => "Other Configuration Change",
        ConnectionCollision = 7 => "Connection Collision Resolution",
        OutOfResources = 8 => "Out of Resources",
        HardReset = 9 => "Hard Reset",
        BfdDown = 10 => "BFD Down",
    }
}

subcodes! {
    /// Subcodes of ROUTE-REFRESH Message Error (code 7, RFC 7313).
    RouteRefreshError {
        InvalidMessageLength = 1 => "Invalid Message Length",
    }
}

/// The error code values (RFC 4271 section 4.5, RFC 7313, RFC 9687).
mod value {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;
}

/// The error code and subcode of a NOTIFICATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    MessageHeader(HeaderError),
    Open(OpenError),
    Update(UpdateError),
    /// Subcode 0.
    HoldTimerExpired,
    Fsm(FsmError),
    Cease(Cease),
    RouteRefresh(RouteRefreshError),
    /// RFC 9687; subcode 0.
    SendHoldTimerExpired,
    /// A pair no RFC this crate knows names (an unassigned code, or a
    /// subcode unknown for its code), kept as received.
    Unknown {
        code: u8,
        subcode: u8,
    },
}

impl ErrorCode {
    /// The value for a (code, subcode) pair from the wire.
    pub fn from_wire(code: u8, subcode: u8) -> ErrorCode {
        use value::*;
        let named = match code {
            MESSAGE_HEADER => HeaderError::from_u8(subcode).map(ErrorCode::MessageHeader),
            OPEN => OpenError::from_u8(subcode).map(ErrorCode::Open),
            UPDATE => UpdateError::from_u8(subcode).map(ErrorCode::Update),
            HOLD_TIMER_EXPIRED if subcode == 0 => Some(ErrorCode::HoldTimerExpired),
            FSM => FsmError::from_u8(subcode).map(ErrorCode::Fsm),
            CEASE => Cease::from_u8(subcode).map(ErrorCode::Cease),
            ROUTE_REFRESH => RouteRefreshError::from_u8(subcode).map(ErrorCode::RouteRefresh),
            SEND_HOLD_TIMER_EXPIRED if subcode == 0 => Some(ErrorCode::SendHoldTimerExpired),
            _ => None,
        };
        named.unwrap_or(ErrorCode::Unknown { code, subcode })
    }

    /// The error code octet.
    pub fn code(self) -> u8 {
        use value::*;
        match self {
            ErrorCode::MessageHeader(_) => MESSAGE_HEADER,
            ErrorCode::Open(_) => OPEN,
            ErrorCode::Update(_) => UPDATE,
            ErrorCode::HoldTimerExpired => HOLD_TIMER_EXPIRED,
            ErrorCode::Fsm(_) => FSM,
            ErrorCode::Cease(_) => CEASE,
            ErrorCode::RouteRefresh(_) => ROUTE_REFRESH,
            ErrorCode::SendHoldTimerExpired => SEND_HOLD_TIMER_EXPIRED,
            ErrorCode::Unknown { code, .. } => code,
        }
    }

    /// The error subcode octet.
    pub fn subcode(self) -> u8 {
        match self {
            ErrorCode::MessageHeader(s) => s.to_u8(),
            ErrorCode::Open(s) => s.to_u8(),
            ErrorCode::Update(s) => s.to_u8(),
            ErrorCode::HoldTimerExpired | ErrorCode::SendHoldTimerExpired => 0,
            ErrorCode::Fsm(s) => s.to_u8(),
            ErrorCode::Cease(s) => s.to_u8(),
            ErrorCode::RouteRefresh(s) => s.to_u8(),
            ErrorCode::Unknown { subcode, .. } => subcode,
        }
    }

    /// The name of the error code alone ("Cease").
    pub fn code_name(self) -> Option<&'static str> {
        use value::*;
        Some(match self.code() {
            MESSAGE_HEADER => "Message Header Error",
            OPEN => "OPEN Message Error",
            UPDATE => "UPDATE Message Error",
            HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            FSM => "Finite State Machine Error",
            CEASE => "Cease",
            ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            SEND_HOLD_TIMER_EXPIRED => "Send Hold Timer Expired",
            _ => return None,
        })
    }

    fn subcode_name(self) -> Option<&'static str> {
        match self {
            ErrorCode::MessageHeader(s) => Some(s.name()),
            ErrorCode::Open(s) => Some(s.name()),
            ErrorCode::Update(s) => Some(s.name()),
            ErrorCode::Fsm(s) => Some(s.name()),
            ErrorCode::Cease(s) => Some(s.name()),
            ErrorCode::RouteRefresh(s) => Some(s.name()),
            ErrorCode::HoldTimerExpired | ErrorCode::SendHoldTimerExpired | ErrorCode::Unknown { .. } => None,
        }
    }
}

/// "Code/Subcode" by name, as FRR and BIRD print them; a code without
/// subcodes is its name alone; what has no name is given by number.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code_name(), self.subcode_name(), self) {
            (Some(c), Some(s), _) => write!(f, "{c}/{s}"),
            (Some(c), None, ErrorCode::Unknown { subcode, .. }) => write!(f, "{c}/unknown subcode {subcode}"),
            (Some(c), None, _) => f.write_str(c),
            (None, _, _) => write!(f, "unknown error code {}", self.code()),
        }
    }
}

macro_rules! into_error_code {
    ($($sub:ident => $variant:ident,)*) => {
        $(impl From<$sub> for ErrorCode {
            fn from(s: $sub) -> ErrorCode {
                ErrorCode::$variant(s)
            }
        })*
    };
}

into_error_code! {
    HeaderError => MessageHeader,
    OpenError => Open,
    UpdateError => Update,
    FsmError => Fsm,
    Cease => Cease,
    RouteRefreshError => RouteRefresh,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_maps_to_one_value_and_back() {
        for code in 0..=255u8 {
            for subcode in 0..=255u8 {
                let e = ErrorCode::from_wire(code, subcode);
                assert_eq!((e.code(), e.subcode()), (code, subcode), "{e:?}");
            }
        }
    }

    #[test]
    fn names_are_the_ones_routers_print() {
        let cases: [(ErrorCode, &str); 9] = [
            (Cease::AdminShutdown.into(), "Cease/Administrative Shutdown"),
            (Cease::BfdDown.into(), "Cease/BFD Down"),
            (Cease::HardReset.into(), "Cease/Hard Reset"),
            (Cease::ConnectionCollision.into(), "Cease/Connection Collision Resolution"),
            (ErrorCode::HoldTimerExpired, "Hold Timer Expired"),
            (OpenError::BadPeerAs.into(), "OPEN Message Error/Bad Peer AS"),
            (
                FsmError::UnexpectedInOpenConfirm.into(),
                "Finite State Machine Error/Receive Unexpected Message in OpenConfirm State",
            ),
            (ErrorCode::from_wire(6, 42), "Cease/unknown subcode 42"),
            (ErrorCode::from_wire(42, 1), "unknown error code 42"),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn values_are_the_iana_ones() {
        assert_eq!((ErrorCode::from(Cease::MaxPrefixes).code(), Cease::MaxPrefixes.to_u8()), (6, 1));
        assert_eq!(Cease::BfdDown.to_u8(), 10);
        assert_eq!(Cease::HardReset.to_u8(), 9);
        assert_eq!(ErrorCode::from(FsmError::UnexpectedInEstablished).code(), 5);
        assert_eq!(FsmError::UnexpectedInEstablished.to_u8(), 3);
        assert_eq!(ErrorCode::from(RouteRefreshError::InvalidMessageLength).code(), 7);
        assert_eq!(OpenError::UnsupportedCapability.to_u8(), 7);
        assert_eq!(UpdateError::MalformedAsPath.to_u8(), 11);
        assert_eq!(ErrorCode::from_wire(4, 0), ErrorCode::HoldTimerExpired);
        assert_eq!(ErrorCode::from_wire(4, 1), ErrorCode::Unknown { code: 4, subcode: 1 });
        assert_eq!(ErrorCode::from_wire(8, 0), ErrorCode::SendHoldTimerExpired);
    }
}
