// Command netclient is the client side of the network benchmarks, built
// static into the nettest image (services/e2e) so that it runs inside a
// container against netserver in another:
//
//	netclient ping ADDR N     N connects, each until the first byte of a
//	                          ping's answer; prints "p50 p95" in µs
//	netclient sink ADDR BYTES sends BYTES to the sink, waits for its count;
//	                          prints the milliseconds it took
//	netclient udp ADDR N      sends "hello" datagrams (every 200 ms, at most
//	                          N) until one is answered; prints the answer
//
// It dials until the server answers (at most 60 s) before measuring.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: netclient ping|sink ADDR N")
		os.Exit(2)
	}
	addr := os.Args[2]
	n, err := strconv.ParseInt(os.Args[3], 10, 64)
	if err != nil {
		fail(err)
	}
	if os.Args[1] == "udp" {
		udp(addr, n)
		return
	}
	awaitServer(addr)
	switch os.Args[1] {
	case "ping":
		var ds []time.Duration
		buf := make([]byte, 1)
		for i := int64(0); i < n; i++ {
			start := time.Now()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail(err)
			}
			if _, err := c.Write([]byte{'p', 1}); err != nil {
				fail(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				fail(err)
			}
			ds = append(ds, time.Since(start))
			c.Close()
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		fmt.Println(ds[len(ds)/2].Microseconds(), ds[(len(ds)*95+99)/100-1].Microseconds())
	case "sink":
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fail(err)
		}
		if _, err := c.Write([]byte{'s'}); err != nil {
			fail(err)
		}
		buf := make([]byte, 256<<10)
		for left := n; left > 0; {
			k := min(int64(len(buf)), left)
			if _, err := c.Write(buf[:k]); err != nil {
				fail(err)
			}
			left -= k
		}
		c.(*net.TCPConn).CloseWrite()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != strconv.FormatInt(n, 10)+"\n" {
			fail(fmt.Errorf("sink counted %q, %v; sent %d", line, err, n))
		}
		fmt.Println(time.Since(start).Milliseconds())
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}

// awaitServer dials until a ping is answered.
func awaitServer(addr string) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			_, werr := c.Write([]byte{'p', 1})
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, rerr := io.ReadFull(c, make([]byte, 1))
			c.Close()
			if werr == nil && rerr == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("%s never answered: %v", addr, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// udp sends datagrams to addr until one is answered (at most n tries,
// 200 ms apart: a datagram sent before the way is up is lost) and prints
// the answer.
func udp(addr string, n int64) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := int64(0); i < n; i++ {
		if _, err := c.Write([]byte("hello")); err != nil {
			time.Sleep(200 * time.Millisecond) // refused: nobody listens yet
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		k, err := c.Read(buf)
		if err == nil {
			fmt.Println(string(buf[:k]))
			return
		}
	}
	fail(fmt.Errorf("no answer from %s", addr))
}
