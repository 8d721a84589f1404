// Command netserver is a TCP server for the network tests, built static
// into a test image (services/e2e): `netserver PORT` serves every
// connection by its first byte:
//
//	'e'  echo: everything after it comes back; the end of the client's
//	     writes ends the server's writes (half-close passes through).
//	's'  sink: read to the end of the client's writes, then answer the
//	     byte count as a decimal line and close.
//	'g'  generate: read a decimal byte count ending in '\n', write that
//	     many bytes, then close the writes and read (and count) what the
//	     client still sends until it ends its writes; print the count.
//	'h'  half-close first: write "bye\n", close the writes, then count
//	     what the client sends until it ends its own; print the count.
//	'p'  ping: answer each byte with one byte (round trips).
//
// Counts printed go to stdout (docker logs) as "got N". It also listens
// on UDP PORT and answers each datagram with it upper-cased.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: netserver PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", ":"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pc, err := net.ListenPacket("udp", ":"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go serveUDP(pc)
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go serve(c.(*net.TCPConn))
	}
}

func serve(c *net.TCPConn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	mode, err := r.ReadByte()
	if err != nil {
		return
	}
	switch mode {
	case 'e':
		io.Copy(c, r)
		c.CloseWrite()
	case 's':
		n, _ := io.Copy(io.Discard, r)
		fmt.Fprintf(c, "%d\n", n)
	case 'g':
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := int64(len(buf))
			if n < k {
				k = n
			}
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
		c.CloseWrite()
		got, _ := io.Copy(io.Discard, r)
		fmt.Printf("got %d\n", got)
	case 'h':
		io.WriteString(c, "bye\n")
		c.CloseWrite()
		got, _ := io.Copy(io.Discard, r)
		fmt.Printf("got %d\n", got)
	case 'p':
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}
}

// serveUDP answers each datagram with it upper-cased.
func serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
	}
}
