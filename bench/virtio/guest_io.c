// bench/virtio/guest_io.c: the guest side of bench/virtio/run.sh's disk figures. Busybox has no
// fio and its dd prints no timing, so this small static program does the two things it lacks:
//
//   guest_io now
//       print CLOCK_MONOTONIC in seconds with nanoseconds (to time busybox dd)
//   guest_io randread DEVICE SECONDS [THREADS]
//       4 KiB reads at random 4 KiB-aligned offsets of DEVICE, opened O_DIRECT, for SECONDS;
//       THREADS (default 1) threads each keep one read in flight, so THREADS is the queue depth.
//       Offsets come from a fixed-seed xorshift per thread: every run reads the same sequence.
//       Prints "randread: N ops in S s, I IOPS, qd T".
//   guest_io latency DEVICE SECONDS INTERVAL_MS
//       a latency-sensitive reader: one 4 KiB O_DIRECT read at a random offset every INTERVAL_MS
//       (paced, not saturating) for SECONDS; prints "latency: N reads, p50 A us, p99 B us,
//       p99.9 C us, max D us" (bench/contention/tail_latency.sh)
//   guest_io tcpsend IP PORT MIB
//       connect to IP:PORT, send MIB MiB of zeros in 256 KiB writes, close (busybox nc moves
//       data in small reads and writes: its own system calls would dominate)
//   guest_io tcprecv IP PORT
//       connect to IP:PORT, read until the peer closes, print "tcprecv: N bytes"
// The TCP figures are timed on the host (bench/virtio/run.sh's receiver and sender).
//
// Small packets (UDP datagrams of SIZE bytes; the same binary runs on the host side too):
//   guest_io udpsend IP PORT SIZE SECONDS
//       send datagrams to IP:PORT as fast as the socket takes them for SECONDS
//   guest_io udpsink IP PORT
//       bind IP:PORT, count datagrams from the first until none came for 1 s; print
//       "udp: N datagrams in S s, P pps"
//   guest_io udpserve IP PORT SIZE SECONDS
//       bind IP:PORT, wait for one datagram, then udpsend to its sender for SECONDS
//   guest_io udprecv IP PORT
//       ask IP:PORT (a udpserve) for datagrams (a request every 0.5 s until the first
//       arrives), then count like udpsink
//
// Built on the host with `gcc -static -O2 -pthread` and shipped in an extra initramfs archive.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

enum { k_block = 4096, k_max_threads = 64 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct worker {
    pthread_t thread;
    int fd;
    uint64_t blocks;  // device size in 4 KiB blocks
    double deadline;
    uint64_t seed;
    uint64_t ops;
    int failed;
};

static void* run_worker(void* arg) {
    struct worker* w = arg;
    void* buffer;
    if (posix_memalign(&buffer, k_block, k_block) != 0) { w->failed = 1; return NULL; }
    uint64_t x = w->seed;
    for (;;) {
        // Check the clock every 16 reads: a read costs far more than a clock_gettime here.
        for (int i = 0; i < 16; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;  // xorshift64
            off_t offset = (off_t)((x % w->blocks) * k_block);
            if (pread(w->fd, buffer, k_block, offset) != k_block) {
                perror("randread: pread");
                w->failed = 1;
                free(buffer);
                return NULL;
            }
            w->ops++;
        }
        if (now() >= w->deadline) break;
    }
    free(buffer);
    return NULL;
}

static int randread(const char* device, double seconds, int threads) {
    int fd = open(device, O_RDONLY | O_DIRECT);
    if (fd < 0) { perror(device); return 1; }
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        bytes = end > 0 ? (uint64_t)end : 0;
    }
    if (bytes < k_block) { fprintf(stderr, "randread: %s is too small\n", device); return 1; }
    struct worker workers[k_max_threads];
    memset(workers, 0, sizeof workers);
    double start = now();
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){ .fd = fd, .blocks = bytes / k_block, .deadline = start + seconds,
                                      .seed = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1) };
        if (pthread_create(&workers[t].thread, NULL, run_worker, &workers[t]) != 0) {
            fprintf(stderr, "randread: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t ops = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t].thread, NULL);
        ops += workers[t].ops;
        failed |= workers[t].failed;
    }
    double elapsed = now() - start;
    close(fd);
    if (failed) return 1;
    printf("randread: %llu ops in %.3f s, %.0f IOPS, qd %d\n", (unsigned long long)ops, elapsed,
           (double)ops / elapsed, threads);
    return 0;
}

static int compare_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

static int latency(const char* device, double seconds, double interval_ms) {
    enum { k_max_samples = 1 << 20 };
    int fd = open(device, O_RDONLY | O_DIRECT);
    if (fd < 0) { perror(device); return 1; }
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0 || bytes < k_block) { fprintf(stderr, "latency: %s: no size\n", device); return 1; }
    void* buffer;
    double* samples = malloc(sizeof(double) * k_max_samples);
    if (!samples || posix_memalign(&buffer, k_block, k_block) != 0) return 1;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t n = 0;
    double start = now(), next = start;
    while (now() < start + seconds && n < k_max_samples) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        double before = now();
        if (pread(fd, buffer, k_block, (off_t)((x % (bytes / k_block)) * k_block)) != k_block) {
            perror("latency: pread");
            return 1;
        }
        samples[n++] = (now() - before) * 1e6;
        // Paced from the schedule, not from the last read's end: a slow read does not lower the
        // rate of those that follow (no coordinated omission).
        next += interval_ms / 1000.0;
        double wait = next - now();
        if (wait > 0) usleep((useconds_t)(wait * 1e6));
    }
    close(fd);
    if (n == 0) return 1;
    qsort(samples, n, sizeof(double), compare_double);
#define AT(q) samples[(size_t)((double)(n - 1) * (q))]
    printf("latency: %zu reads, p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us\n", n, AT(0.5), AT(0.99),
           AT(0.999), samples[n - 1]);
#undef AT
    free(samples);
    free(buffer);
    return 0;
}

enum { k_tcp_chunk = 256 << 10 };

static int tcp_connect(const char* ip, const char* port) {
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) { fprintf(stderr, "tcp: bad address %s\n", ip); return -1; }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { perror("tcp: socket"); return -1; }
    if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) { perror("tcp: connect"); close(fd); return -1; }
    return fd;
}

static int tcpsend(const char* ip, const char* port, long mib) {
    int fd = tcp_connect(ip, port);
    if (fd < 0) return 1;
    static char buffer[k_tcp_chunk];
    long long left = (long long)mib << 20;
    while (left > 0) {
        ssize_t n = write(fd, buffer, left < k_tcp_chunk ? (size_t)left : k_tcp_chunk);
        if (n <= 0) { perror("tcpsend: write"); close(fd); return 1; }
        left -= n;
    }
    // Wait for the receiver to close: it has every byte then.
    shutdown(fd, SHUT_WR);
    while (read(fd, buffer, sizeof buffer) > 0) {}
    close(fd);
    return 0;
}

static int tcprecv(const char* ip, const char* port) {
    int fd = tcp_connect(ip, port);
    if (fd < 0) return 1;
    static char buffer[k_tcp_chunk];
    long long total = 0;
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) total += n;
    if (n < 0) perror("tcprecv: read");
    close(fd);
    printf("tcprecv: %lld bytes\n", total);
    return n < 0;
}

static int udp_socket(const char* ip, const char* port, struct sockaddr_in* addr) {
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, ip, &addr->sin_addr) != 1) { fprintf(stderr, "udp: bad address %s\n", ip); return -1; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) perror("udp: socket");
    return fd;
}

static int udp_blast(int fd, const struct sockaddr_in* to, int size, double seconds) {
    static char buffer[65536];
    if (size < 1 || size > (int)sizeof buffer) { fprintf(stderr, "udp: SIZE 1..65536\n"); return 1; }
    double end = now() + seconds;
    unsigned long long sent = 0;
    while (now() < end) {
        for (int i = 0; i < 64; i++)
            if (sendto(fd, buffer, (size_t)size, 0, (const struct sockaddr*)to, sizeof *to) == size) sent++;
    }
    printf("udpsend: %llu datagrams\n", sent);
    return 0;
}

// Counts datagrams on `fd` from the first until none came for 1 s (or none at all for 120 s).
static int udp_count(int fd) {
    static char buffer[65536];
    struct timeval wait = { .tv_sec = 120 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    unsigned long long count = 0;
    double first = 0, last = 0;
    while (recv(fd, buffer, sizeof buffer, 0) >= 0) {
        last = now();
        if (count++ == 0) {
            first = last;
            struct timeval idle = { .tv_sec = 1 };
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
        }
    }
    if (count < 2 || last <= first) { printf("udp: %llu datagrams\n", count); return 1; }
    printf("udp: %llu datagrams in %.3f s, %.0f pps\n", count, last - first, (double)(count - 1) / (last - first));
    return 0;
}

static int udpsink(const char* ip, const char* port) {
    struct sockaddr_in addr;
    int fd = udp_socket(ip, port, &addr);
    if (fd < 0) return 1;
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) { perror("udpsink: bind"); return 1; }
    return udp_count(fd);
}

static int udpserve(const char* ip, const char* port, int size, double seconds) {
    struct sockaddr_in addr, peer;
    socklen_t peer_size = sizeof peer;
    char request[16];
    int fd = udp_socket(ip, port, &addr);
    if (fd < 0) return 1;
    if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) { perror("udpserve: bind"); return 1; }
    if (recvfrom(fd, request, sizeof request, 0, (struct sockaddr*)&peer, &peer_size) < 0) {
        perror("udpserve: recvfrom");
        return 1;
    }
    return udp_blast(fd, &peer, size, seconds);
}

static int udprecv(const char* ip, const char* port) {
    struct sockaddr_in server;
    int fd = udp_socket(ip, port, &server);
    if (fd < 0) return 1;
    // Ask until the first datagram arrives (the server may not be up yet; a request may be lost).
    struct timeval half = { .tv_usec = 500000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &half, sizeof half);
    char buffer[16];
    for (int tries = 0;; tries++) {
        if (tries == 240) { printf("udp: no answer from %s:%s\n", ip, port); return 1; }
        sendto(fd, "go", 2, 0, (struct sockaddr*)&server, sizeof server);
        if (recv(fd, buffer, sizeof buffer, MSG_PEEK | MSG_TRUNC) >= 0) break;
    }
    return udp_count(fd);
}

int main(int argc, char** argv) {
    if (argc == 2 && strcmp(argv[1], "now") == 0) {
        printf("%.6f\n", now());
        return 0;
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "randread") == 0) {
        double seconds = atof(argv[3]);
        int threads = argc == 5 ? atoi(argv[4]) : 1;
        if (seconds <= 0 || threads < 1 || threads > k_max_threads) {
            fprintf(stderr, "randread: SECONDS > 0 and 1 <= THREADS <= %d\n", k_max_threads);
            return 2;
        }
        return randread(argv[2], seconds, threads);
    }
    if (argc == 5 && strcmp(argv[1], "latency") == 0) return latency(argv[2], atof(argv[3]), atof(argv[4]));
    if (argc == 5 && strcmp(argv[1], "tcpsend") == 0) return tcpsend(argv[2], argv[3], atol(argv[4]));
    if (argc == 4 && strcmp(argv[1], "tcprecv") == 0) return tcprecv(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "udpsend") == 0) {
        struct sockaddr_in to;
        int fd = udp_socket(argv[2], argv[3], &to);
        return fd < 0 ? 1 : udp_blast(fd, &to, atoi(argv[4]), atof(argv[5]));
    }
    if (argc == 4 && strcmp(argv[1], "udpsink") == 0) return udpsink(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "udpserve") == 0) return udpserve(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
    if (argc == 4 && strcmp(argv[1], "udprecv") == 0) return udprecv(argv[2], argv[3]);
    fprintf(stderr, "usage: guest_io now | randread DEVICE SECONDS [THREADS] | latency DEVICE SECONDS INTERVAL_MS | tcpsend IP PORT MIB | tcprecv IP PORT"
                    " | udpsend IP PORT SIZE SECONDS | udpsink IP PORT | udpserve IP PORT SIZE SECONDS | udprecv IP PORT\n");
    return 2;
}
