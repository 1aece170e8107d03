#include "engine/emulated_engine.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "engine_test_support.h"

namespace corral::engine {
namespace {

using Args = std::vector<std::string>;

/// The value following `flag` each time it appears.
Args values_of(const Args& args, const std::string& flag) {
    Args values;
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == flag)
            values.push_back(args[i + 1]);
    return values;
}

bool has(const Args& args, const std::string& arg) {
    return std::find(args.begin(), args.end(), arg) != args.end();
}

LaunchSpec sample_spec() {
    LaunchSpec spec;
    spec.name = "web1";
    spec.vcpus = 2;
    spec.memory_mib = 768;
    spec.kernel = "/img/vmlinuz";
    spec.initrd = "/img/initrd.img";
    spec.cmdline = "console=ttyS0 corral.marker=X";
    spec.disks = {{"/pool/web1-root.qcow2", "qcow2", false, "root"},
                  {"/pool/data,1.raw", "raw", true, ""}};
    spec.nics = {{"tap-web1-0", "52:54:00:12:34:56"}, {"tap-web1-1", ""}};
    spec.run_dir = "/run/corral/vms/web1";
    return spec;
}

/// What the engine would open for sample_spec(): fds 3.. in the order it adds them.
QemuFiles sample_files() {
    QemuFiles files;
    files.console_socket = 3;
    files.qmp_socket = 4;
    files.console_log = 5;
    // web1-root.qcow2 (writable) over a base; data,1.raw read-only.
    files.disks = {{{"qcow2", {6, 7}}, {"qcow2", {8}}}, {{"raw", {9}}}};
    files.taps = {10, 11};
    files.initrd = "initrd";
    return files;
}

Args command_line(const LaunchSpec& spec, const std::string& qemu) {
    QemuFiles files = sample_files();
    files.disks.resize(spec.disks.size());
    files.taps.resize(spec.nics.size());
    if (spec.initrd.empty())
        files.initrd.clear();
    return qemu_command_line(spec, qemu, files);
}

TEST(QemuCommandLine, MachineCpuMemoryAndKernel) {
    Args args = command_line(sample_spec(), "/usr/bin/qemu-system-x86_64");
    EXPECT_EQ(args[0], "/usr/bin/qemu-system-x86_64");
    EXPECT_EQ(values_of(args, "-accel"), Args{"tcg,thread=multi"});
    EXPECT_EQ(values_of(args, "-M"), Args{"pc"});
    EXPECT_EQ(values_of(args, "-cpu"), Args{"max"});
    EXPECT_EQ(values_of(args, "-smp"), Args{"2"});
    EXPECT_EQ(values_of(args, "-m"), Args{"768M"});
    EXPECT_TRUE(has(args, "-nodefaults"));
    EXPECT_TRUE(has(args, "-no-user-config"));
    EXPECT_EQ(values_of(args, "-display"), Args{"none"});
    // QEMU reads its own copies in its working folder (the run folder), not the image's files.
    EXPECT_EQ(values_of(args, "-kernel"), Args{"kernel"});
    EXPECT_EQ(values_of(args, "-initrd"), Args{"initrd"});
    EXPECT_EQ(values_of(args, "-append"), Args{"console=ttyS0 corral.marker=X"});
    EXPECT_FALSE(has(args, "-enable-kvm"));
    EXPECT_EQ(values_of(args, "-sandbox"),
              Args{"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"});
}

TEST(QemuCommandLine, ConsoleAndQmpAreHandedDescriptors) {
    Args args = command_line(sample_spec(), "qemu-system-x86_64");
    EXPECT_EQ(values_of(args, "-chardev"),
              (Args{"socket,id=con,fd=3,server=on,wait=off,logfile=/dev/fdset/0,logappend=on",
                    "socket,id=qmp,fd=4,server=on,wait=off"}));
    EXPECT_EQ(values_of(args, "-serial"), Args{"chardev:con"});
    EXPECT_EQ(values_of(args, "-mon"), Args{"chardev=qmp,mode=control"});
}

TEST(QemuCommandLine, AWrittenVersion3Qcow2TopLayerHasLazyRefcounts) {
    // What the engine sets for a version 3 image it writes (a version 2 one would make QEMU
    // refuse to start): a savevm after a loadvm then does not flush once per cluster.
    QemuFiles files = sample_files();
    files.disks[0][0].lazy_refcounts = true;
    Args args = qemu_command_line(sample_spec(), "qemu-system-x86_64", files);
    EXPECT_EQ(values_of(args, "-drive").at(0),
              "if=none,id=disk0,file=/dev/fdset/1,format=qcow2,lazy-refcounts=on,backing.driver=qcow2,"
              "backing.file.filename=/dev/fdset/2,file.auto-read-only=off");
}

TEST(QemuCommandLine, DisksNicsAndRng) {
    Args args = command_line(sample_spec(), "qemu-system-x86_64");
    // Every layer is an fd set; the backing chain is spelled out so QEMU opens no path itself.
    EXPECT_EQ(values_of(args, "-add-fd"),
              (Args{"fd=5,set=0", "fd=6,set=1", "fd=7,set=1", "fd=8,set=2", "fd=9,set=3"}));
    EXPECT_EQ(values_of(args, "-drive"),
              (Args{"if=none,id=disk0,file=/dev/fdset/1,format=qcow2,backing.driver=qcow2,"
                    "backing.file.filename=/dev/fdset/2,file.auto-read-only=off",
                    "if=none,id=disk1,file=/dev/fdset/3,format=raw,readonly=on"}));
    EXPECT_EQ(values_of(args, "-netdev"), (Args{"tap,id=net0,fd=10", "tap,id=net1,fd=11"}));
    EXPECT_EQ(values_of(args, "-device"),
              (Args{"virtio-rng-pci,rng=rng0", "virtio-blk-pci,drive=disk0,id=vd0,serial=root",
                    "virtio-blk-pci,drive=disk1,id=vd1",
                    "virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:12:34:56",
                    "virtio-net-pci,netdev=net1,id=nic1",
                    // Last: the other devices keep the PCI slots they had before it existed.
                    "virtio-balloon-pci,id=balloon0,free-page-reporting=on,deflate-on-oom=on,"
                    "guest-stats-polling-interval=2"}));
    EXPECT_EQ(values_of(args, "-object"), Args{"rng-random,id=rng0,filename=/dev/urandom"});
    // Named vCPU threads ("CPU 0/TCG"): corrald pins them and reads their run delay.
    EXPECT_EQ(values_of(args, "-name"), Args{"web1,debug-threads=on"});
}

TEST(QemuCommandLine, NoInitrdNoDisksNoNics) {
    LaunchSpec spec = sample_spec();
    spec.initrd.clear();
    spec.disks.clear();
    spec.nics.clear();
    Args args = command_line(spec, "qemu-system-x86_64");
    EXPECT_FALSE(has(args, "-initrd"));
    EXPECT_FALSE(has(args, "-drive"));
    EXPECT_FALSE(has(args, "-netdev"));
}

TEST(QemuCommandLine, LoadvmOnlyWhenRestoring) {
    EXPECT_TRUE(values_of(command_line(sample_spec(), "qemu"), "-loadvm").empty());
    LaunchSpec spec = sample_spec();
    spec.restore_tag = "before-upgrade";
    EXPECT_EQ(values_of(command_line(spec, "qemu"), "-loadvm"), Args{"before-upgrade"});
}

TEST(QemuCommandLine, GenerationIdPausedStartAndHostClockRtc) {
    Args plain = command_line(sample_spec(), "qemu");
    EXPECT_FALSE(has(plain, "-S"));
    EXPECT_EQ(values_of(plain, "-rtc"), Args{"base=utc,clock=host"});
    LaunchSpec spec = sample_spec();
    spec.restore_tag = "golden";
    spec.start_paused = true;
    spec.generation_id = "0b7a53f6-2f6e-4f5a-9d0e-6a1c3c2f8e11";
    Args args = command_line(spec, "qemu");
    EXPECT_TRUE(has(args, "-S"));
    EXPECT_TRUE(has(args, "vmgenid,guid=0b7a53f6-2f6e-4f5a-9d0e-6a1c3c2f8e11"));
}

TEST(QemuCommandLine, IncomingDeferOnlyForAMigrationDestination) {
    EXPECT_TRUE(values_of(command_line(sample_spec(), "qemu"), "-incoming").empty());
    LaunchSpec spec = sample_spec();
    spec.migrate_listen = "tcp:127.0.0.1:4444";
    // The URI comes later over QMP (migrate-incoming), once QEMU answers there.
    EXPECT_EQ(values_of(command_line(spec, "qemu"), "-incoming"), Args{"defer"});
}

TEST(QemuCommandLine, ADisplayIsVirtioGpuKeyboardTabletAndVncWithoutAListener) {
    // Without a display: no display device, no VNC (QEMU's default VGA is off through -nodefaults).
    Args plain = command_line(sample_spec(), "qemu");
    EXPECT_FALSE(has(plain, "-vnc"));
    EXPECT_FALSE(has(plain, "virtio-keyboard-pci"));
    LaunchSpec spec = sample_spec();
    spec.display_width = 1024;
    spec.display_height = 768;
    Args args = command_line(spec, "qemu");
    // -vga none: virtio-gpu is the primary display (with the default VGA the screen stays in text mode).
    EXPECT_EQ(values_of(args, "-vga"), Args{"none"});
    Args devices = values_of(args, "-device");
    EXPECT_TRUE(has(devices, "virtio-gpu-pci,xres=1024,yres=768"));
    EXPECT_TRUE(has(devices, "virtio-keyboard-pci"));
    EXPECT_TRUE(has(devices, "virtio-tablet-pci"));
    // QEMU listens nowhere: corrald hands it each viewer's socket over QMP; viewers share the screen.
    EXPECT_EQ(values_of(args, "-vnc"), Args{"none,share=force-shared"});
    EXPECT_EQ(values_of(args, "-display"), Args{"none"});
}

TEST(QemuVersion, ParsesTheFirstLine) {
    EXPECT_EQ(parse_qemu_version(
                  "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"
                  "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n"),
              "qemu-system-x86_64 7.2.22");
    EXPECT_EQ(parse_qemu_version("something else"), "");
}

TEST(EmulatedEngine, MissingQemuIsUnavailableAndLaunchSaysWhy) {
    testing::TestDir dir;
    EnginePaths paths = testing::build_tree_paths();
    paths.qemu = "/nonexistent/qemu-system-x86_64";
    auto engine = make_emulated_engine(paths);
    EXPECT_EQ(engine->name(), "emulated");
    Availability availability = engine->availability();
    EXPECT_FALSE(availability.available);
    EXPECT_NE(availability.reason.find("/nonexistent/qemu-system-x86_64 not found"),
              std::string::npos)
        << availability.reason;

    LaunchSpec spec;
    spec.name = "vm1";
    spec.kernel = "/proc/self/exe";  // any existing file: launch must fail before using it
    spec.run_dir = dir.path("vm1");
    auto instance = engine->launch(spec);
    ASSERT_FALSE(instance);
    EXPECT_EQ(instance.error().errno_value(), ENOENT);
    EXPECT_NE(
        instance.error().message().find("QEMU binary /nonexistent/qemu-system-x86_64 not found"),
        std::string::npos)
        << instance.error().message();
}

TEST(EmulatedEngine, AvailableWithTheHostQemu) {
    auto engine = make_emulated_engine(testing::build_tree_paths());
    Availability availability = engine->availability();
    if (!availability.available)
        GTEST_SKIP() << "no QEMU on this host: " << availability.reason;
    EXPECT_TRUE(availability.reason.starts_with("qemu-system-x86_64 ")) << availability.reason;
    EXPECT_TRUE(availability.reason.ends_with(" (TCG)")) << availability.reason;
}

TEST(EmulatedEngine, AdoptOfAnEmptyRunDirIsNotFound) {
    testing::TestDir dir;
    auto instance = make_emulated_engine(testing::build_tree_paths())->adopt(dir.dir());
    ASSERT_FALSE(instance);
    EXPECT_EQ(instance.error().errno_value(), ENOENT);
}

}  // namespace
}  // namespace corral::engine
