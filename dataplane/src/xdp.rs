//! Loading and attaching the embedded XDP programs (`ebpf/`, built by `build.rs`).
//!
//! [`XdpPrograms`] owns the loaded object and the attachments. Programs are attached with
//! a bpf_link (`BPF_LINK_CREATE`, Linux >= 5.9), never with the legacy netlink call: the
//! kernel detaches a link when its last fd closes, so if the process dies, even by
//! SIGKILL, the interface goes back to plain kernel networking and the host keeps its
//! traffic. aya's own `Xdp::attach` silently falls back to netlink, hence the small
//! syscall wrapper at the end of this module.

use std::{
    ffi::CString,
    fmt, io,
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
};

use aya::{
    maps::{Array, HashMap, MapError, PerCpuArray, XskMap},
    programs::{ProgramError, Xdp},
    Ebpf, EbpfError, EbpfLoader,
};
use vxdp_common::{maps, programs, UnderlayConfig, XdpCounter, MAX_QUEUES, MAX_VNIS};

/// The BPF ELF object built by `build.rs`, aligned for the ELF parser.
static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/vxdp.bpf.o")));

#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

/// How an XDP program runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`): the fast path, required for zero-copy AF_XDP.
    Native,
    /// In the kernel stack after the skb is built (`XDP_FLAGS_SKB_MODE`): works everywhere.
    Generic,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            // From include/uapi/linux/if_link.h.
            XdpMode::Native => 1 << 2,
            XdpMode::Generic => 1 << 1,
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        })
    }
}

/// Errors from loading, attaching and talking to the XDP programs.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("cannot parse or create the maps of the embedded eBPF object: {0}")]
    Object(#[source] EbpfError),
    #[error("eBPF program {program} is missing from the embedded object")]
    MissingProgram { program: &'static str },
    #[error("eBPF program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("eBPF map {map} is missing from the embedded object")]
    MissingMap { map: &'static str },
    #[error("eBPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("interface {ifname:?} does not exist (in this network namespace)")]
    UnknownInterface { ifname: String },
    #[error(
        "cannot attach {program} to {ifname} in {mode} mode with a bpf_link (needs Linux >= 5.9; \
         EBUSY means another XDP program is attached; EOPNOTSUPP in native mode means the \
         driver has no XDP support; ERANGE on a veth means its peer's MTU is above 3506, the most native XDP \
         on a veth takes): {source}"
    )]
    Attach {
        program: &'static str,
        ifname: String,
        mode: XdpMode,
        #[source]
        source: io::Error,
    },
    #[error("eBPF map {map}: {source}")]
    DevMap {
        map: &'static str,
        #[source]
        source: aya::maps::xdp::XdpMapError,
    },
    #[error("queue {queue} is out of range for map {map} (at most {MAX_QUEUES} queues)")]
    QueueOutOfRange { map: &'static str, queue: u32 },
    #[error("VNI {vni}: one daemon serves at most {MAX_VNIS} VNIs")]
    TooManyVnis { vni: u32 },
}

/// One attachment: the kernel detaches the program when `link` is closed.
struct Attachment {
    program: &'static str,
    ifname: String,
    link: OwnedFd,
}

/// The loaded XDP programs and their maps; dropping it detaches every program.
pub struct XdpPrograms {
    // Dropped before `ebpf` (see `Drop`), so links close before programs unload.
    attachments: Vec<Attachment>,
    ebpf: Ebpf,
}

impl fmt::Debug for XdpPrograms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attached: Vec<_> = self.attachments.iter().map(|a| (a.program, a.ifname.as_str())).collect();
        f.debug_struct("XdpPrograms").field("attached", &attached).finish_non_exhaustive()
    }
}

impl XdpPrograms {
    /// Loads both programs into the kernel (running the verifier) and writes `cfg` into
    /// the config map. Nothing is attached yet.
    pub fn load(cfg: &UnderlayConfig) -> Result<Self, XdpError> {
        let mut ebpf = EbpfLoader::new().load(&OBJECT.0).map_err(XdpError::Object)?;

        let map = ebpf.map_mut(maps::CONFIG).ok_or(XdpError::MissingMap { map: maps::CONFIG })?;
        let mut config: Array<_, UnderlayConfig> =
            Array::try_from(map).map_err(|source| XdpError::Map { map: maps::CONFIG, source })?;
        config.set(0, cfg, 0).map_err(|source| XdpError::Map { map: maps::CONFIG, source })?;

        for program in programs::ALL {
            xdp_program(&mut ebpf, program)?.load().map_err(|source| XdpError::Program { program, source })?;
        }
        Ok(Self { attachments: Vec::new(), ebpf })
    }

    /// Attaches the underlay program to `ifname` (the NIC carrying VXLAN).
    pub fn attach_underlay(&mut self, ifname: &str, mode: XdpMode) -> Result<(), XdpError> {
        self.attach(programs::UNDERLAY, ifname, mode)
    }

    /// Attaches the overlay program to `ifname` (vxdp's end of the overlay veth).
    pub fn attach_overlay(&mut self, ifname: &str, mode: XdpMode) -> Result<(), XdpError> {
        self.attach(programs::OVERLAY, ifname, mode)
    }

    /// Port layout: attaches the port program to `ifname` (a port).
    pub fn attach_port(&mut self, ifname: &str, mode: XdpMode) -> Result<(), XdpError> {
        self.attach(programs::PORT, ifname, mode)
    }

    /// Port layout: attaches the trunk program to `ifname` (the user end of the overlay veth).
    pub fn attach_trunk(&mut self, ifname: &str, mode: XdpMode) -> Result<(), XdpError> {
        self.attach(programs::TRUNK, ifname, mode)
    }

    /// Detaches the port program from `ifname`; false if it was not attached there.
    pub fn detach_port(&mut self, ifname: &str) -> bool {
        let Some(i) = self.attachments.iter().position(|a| a.program == programs::PORT && a.ifname == ifname) else {
            return false;
        };
        let a = self.attachments.remove(i);
        drop(a.link);
        log::info!("detached XDP program {} from {ifname}", programs::PORT);
        true
    }

    /// Steers underlay RX queue `queue` to the AF_XDP socket `fd`.
    pub fn register_underlay_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        self.register_socket(maps::UNDERLAY_XSKS, queue, fd)
    }

    /// Steers overlay RX queue `queue` to the AF_XDP socket `fd`.
    pub fn register_overlay_socket(&mut self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        self.register_socket(maps::OVERLAY_XSKS, queue, fd)
    }

    /// Serves `vni` on overlay device `slot`: the underlay program steers its VXLAN from
    /// now on. Until a VNI is served, its frames go to the kernel.
    pub fn serve_vni(&mut self, vni: u32, slot: u32) -> Result<(), XdpError> {
        let map = maps::VNIS;
        let data = self.ebpf.map_mut(map).ok_or(XdpError::MissingMap { map })?;
        let mut vnis: HashMap<_, u32, u32> = HashMap::try_from(data).map_err(|source| XdpError::Map { map, source })?;
        vnis.insert(vni, slot, 0).map_err(|source| match source {
            MapError::SyscallError(ref e) if e.io_error.raw_os_error() == Some(libc::E2BIG) => {
                XdpError::TooManyVnis { vni }
            }
            source => XdpError::Map { map, source },
        })
    }

    /// Stops serving `vni`: its VXLAN goes to the kernel again. False if it was not served.
    pub fn unserve_vni(&mut self, vni: u32) -> Result<bool, XdpError> {
        let map = maps::VNIS;
        let data = self.ebpf.map_mut(map).ok_or(XdpError::MissingMap { map })?;
        let mut vnis: HashMap<_, u32, u32> = HashMap::try_from(data).map_err(|source| XdpError::Map { map, source })?;
        match vnis.remove(&vni) {
            Ok(()) => Ok(true),
            Err(MapError::SyscallError(ref e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(source) => Err(XdpError::Map { map, source }),
        }
    }

    /// The XDP counters, summed over CPUs, indexed by [`XdpCounter`].
    pub fn counters(&self) -> Result<[u64; XdpCounter::COUNT], XdpError> {
        let name = maps::COUNTERS;
        let map = self.ebpf.map(name).ok_or(XdpError::MissingMap { map: name })?;
        let per_cpu: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|source| XdpError::Map { map: name, source })?;
        let mut totals = [0u64; XdpCounter::COUNT];
        for counter in XdpCounter::ALL {
            let values = per_cpu.get(&(counter as u32), 0).map_err(|source| XdpError::Map { map: name, source })?;
            totals[counter as usize] = values.iter().fold(0u64, |sum, v| sum.wrapping_add(*v));
        }
        Ok(totals)
    }

    /// Takes a map out of the object, for a component that owns it from now on (the
    /// programs keep their own reference to it).
    pub fn take_map(&mut self, name: &'static str) -> Result<aya::maps::Map, XdpError> {
        self.ebpf.take_map(name).ok_or(XdpError::MissingMap { map: name })
    }

    fn attach(&mut self, program: &'static str, ifname: &str, mode: XdpMode) -> Result<(), XdpError> {
        let ifindex = if_index(ifname)?;
        let xdp = xdp_program(&mut self.ebpf, program)?;
        let prog_fd = xdp.fd().map_err(|source| XdpError::Program { program, source })?;
        let link = bpf_link_create_xdp(prog_fd.as_fd().as_raw_fd(), ifindex, mode.flags())
            .map_err(|source| XdpError::Attach { program, ifname: ifname.to_owned(), mode, source })?;
        log::info!("attached XDP program {program} to {ifname} ({mode} mode, bpf_link)");
        self.attachments.push(Attachment { program, ifname: ifname.to_owned(), link });
        Ok(())
    }

    fn register_socket(&mut self, map: &'static str, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        if queue >= MAX_QUEUES {
            return Err(XdpError::QueueOutOfRange { map, queue });
        }
        let data = self.ebpf.map_mut(map).ok_or(XdpError::MissingMap { map })?;
        let mut xsks = XskMap::try_from(data).map_err(|source| XdpError::Map { map, source })?;
        xsks.set(queue, fd, 0).map_err(|source| XdpError::Map { map, source })
    }
}

impl Drop for XdpPrograms {
    fn drop(&mut self) {
        for Attachment { program, ifname, link } in self.attachments.drain(..) {
            drop(link);
            log::info!("detached XDP program {program} from {ifname}");
        }
    }
}

fn xdp_program<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut Xdp, XdpError> {
    ebpf.program_mut(program)
        .ok_or(XdpError::MissingProgram { program })?
        .try_into()
        .map_err(|source| XdpError::Program { program, source })
}

/// The index of interface `ifname` in this network namespace.
pub fn if_index(ifname: &str) -> Result<u32, XdpError> {
    let unknown = || XdpError::UnknownInterface { ifname: ifname.to_owned() };
    let c_name = CString::new(ifname).map_err(|_| unknown())?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(unknown()),
        index => Ok(index),
    }
}

/// `union bpf_attr` as used by `BPF_LINK_CREATE` (include/uapi/linux/bpf.h), padded with
/// zeros, which the kernel requires of the fields this command does not use.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    _rest: [u64; 6],
}

const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_XDP: u32 = 37;

/// Attaches `prog_fd` to `ifindex` in the calling thread's network namespace, returning
/// the link fd; closing it detaches the program.
fn bpf_link_create_xdp(prog_fd: RawFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let attr = LinkCreateAttr {
        prog_fd: prog_fd as u32,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        flags,
        ..Default::default()
    };
    // SAFETY: `attr` is a properly initialized, zero-padded prefix of `union bpf_attr`
    // for BPF_LINK_CREATE, alive for the call; the size passed is its exact size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_CREATE,
            &attr as *const LinkCreateAttr,
            std::mem::size_of::<LinkCreateAttr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success BPF_LINK_CREATE returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}
