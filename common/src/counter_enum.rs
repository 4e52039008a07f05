//! [`counter_enum!`](crate::counter_enum): one definition of an enum that indexes a
//! counter array, its length, its index order and its stable names.
#![forbid(unsafe_code)]

/// Defines a fieldless enum whose variants index a counter array, with explicit
/// indices and a stable name each, and generates:
///
/// - the enum, `#[repr($repr)]`, deriving `Clone, Copy, Debug, PartialEq, Eq, Hash`;
/// - `COUNT: usize`, the number of variants (the length of the counter array);
/// - `ALL: [Self; COUNT]`, every variant in index order;
/// - `const fn name(self) -> &'static str`, the variant's stable name.
///
/// The indices must be `0, 1, 2, ...` in the order written: anything else (a gap, a
/// variant out of order) fails to compile, so `ALL[i] as usize == i` always holds.
///
/// ```
/// vxdp_common::counter_enum! {
///     /// What happened to a frame.
///     pub enum Verdict: u8 {
///         /// It went on.
///         Passed = 0 => "passed",
///         Dropped = 1 => "dropped",
///     }
/// }
/// assert_eq!(Verdict::COUNT, 2);
/// assert_eq!(Verdict::ALL[1].name(), "dropped");
/// assert_eq!(Verdict::Dropped as usize, 1);
/// ```
#[macro_export]
macro_rules! counter_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $index:literal => $label:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr($repr)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant = $index,
            )+
        }

        impl $name {
            /// Number of variants: the length of the counter array they index.
            pub const COUNT: usize = [$($name::$variant),+].len();
            /// Every variant, in index order.
            pub const ALL: [$name; Self::COUNT] = [$($name::$variant),+];

            /// Stable snake_case name (part of the `vxdp stats` output).
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        const _: () = {
            let mut i = 0;
            while i < $name::COUNT {
                assert!($name::ALL[i] as usize == i, "counter_enum: indices must be 0, 1, 2, ... in order");
                i += 1;
            }
        };
    };
}

#[cfg(test)]
mod tests {
    crate::counter_enum! {
        enum Sample: u16 {
            A = 0 => "a",
            /// Documented.
            B = 1 => "b_name",
            C = 2 => "c",
        }
    }

    #[test]
    fn generates_count_all_and_names() {
        assert_eq!(Sample::COUNT, 3);
        assert_eq!(Sample::ALL, [Sample::A, Sample::B, Sample::C]);
        assert_eq!(Sample::B.name(), "b_name");
        assert_eq!(Sample::C as u16, 2);
        assert_eq!(core::mem::size_of::<Sample>(), 2);
    }
}
