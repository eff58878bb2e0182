/* The floor of a streaming client's CPU (scripts/bench_probe.sh, FLOOR=1; issue 18): holds
 * STREAMS requests in flight against an OpenAI-compatible server, each on its own connection,
 * and reads every response to its end with one epoll loop and one recv() per ready socket, the
 * least any client can do. Nothing is parsed, timed or recorded: what it costs per streamed
 * chunk is what receiving the bytes costs on this machine, the kernel's share (epoll_wait, recv,
 * the wake-ups) and a loop around it.
 *
 *   cc -O2 -o floor_client scripts/floor_client.c
 *   floor_client HOST PORT STREAMS REQUESTS BODY_FILE
 *
 * Prints the number of SSE events ("data: " lines) it read. Each request is a POST to
 * /v1/completions with BODY_FILE as its body and "Connection: close", so a response ends when
 * the server closes its connection. Exits 1 on a socket error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in addr;
static char request[65536];
static size_t request_len;

/* Opens a connection, sends the request (blocking: it is small) and adds it to the epoll set. */
static int start(int ep) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t sent = 0; sent < request_len;) {
        ssize_t n = send(fd, request + sent, request_len - sent, 0);
        if (n <= 0) {
            perror("send");
            exit(1);
        }
        sent += (size_t)n;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return fd;
}

/* Counts "data: " at line starts across reads (`at_line_start` carries the state). */
static long count_events(const char *buf, ssize_t n, int *state) {
    static const char key[] = "data: ";
    long events = 0;
    for (ssize_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '\n') {
            *state = 0;
        } else if (*state >= 0 && *state < 6) {
            *state = (c == key[*state]) ? *state + 1 : -1;
            if (*state == 6) {
                events++;
            }
        }
    }
    return events;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT STREAMS REQUESTS BODY_FILE\n", argv[0]);
        return 2;
    }
    int streams = atoi(argv[3]);
    long requests = atol(argv[4]);
    static char body[32768];
    FILE *f = fopen(argv[5], "rb");
    if (!f) {
        perror(argv[5]);
        return 2;
    }
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    request_len = (size_t)snprintf(request, sizeof request,
                                   "POST /v1/completions HTTP/1.1\r\nHost: %s\r\n"
                                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                                   "Connection: close\r\n\r\n%.*s",
                                   argv[1], body_len, (int)body_len, body);
    int ep = epoll_create1(0);
    static int state[65536];
    long started = 0, done = 0, events = 0;
    for (; started < requests && started < streams; started++) {
        state[start(ep)] = 0;
    }
    static char buf[65536];
    struct epoll_event ready[1024];
    while (done < requests) {
        int n = epoll_wait(ep, ready, 1024, -1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        for (int i = 0; i < n; i++) {
            int fd = ready[i].data.fd;
            ssize_t got = recv(fd, buf, sizeof buf, 0);
            if (got > 0) {
                events += count_events(buf, got, &state[fd]);
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
                done++;
                if (started < requests) {
                    started++;
                    state[start(ep)] = 0;
                }
            }
        }
    }
    printf("%ld\n", events);
    return 0;
}
