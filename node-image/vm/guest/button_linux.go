package guest

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Linux input events (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)

// PowerButton returns a channel closed when the VM's ACPI power button is
// pressed: that is how libvirt asks a guest with no agent to shut down.
// It needs the button and evdev modules loaded.
func PowerButton(ctx context.Context) (<-chan struct{}, error) {
	names, _ := filepath.Glob("/sys/class/input/event*/device/name")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || strings.TrimSpace(string(b)) != "Power Button" {
			continue
		}
		dev := "/dev/input/" + filepath.Base(filepath.Dir(filepath.Dir(n)))
		f, err := os.Open(dev)
		if err != nil {
			return nil, fmt.Errorf("power button: %w", err)
		}
		pressed := make(chan struct{})
		go func() {
			<-ctx.Done()
			_ = f.Close()
		}()
		go func() {
			defer f.Close()
			// struct input_event on 64-bit: a timeval (16 bytes), then
			// type, code (16 bits each) and value (32 bits).
			ev := make([]byte, 24)
			for {
				if _, err := f.Read(ev); err != nil {
					return
				}
				typ := binary.LittleEndian.Uint16(ev[16:])
				code := binary.LittleEndian.Uint16(ev[18:])
				value := int32(binary.LittleEndian.Uint32(ev[20:]))
				if typ == evKey && code == keyPower && value == 1 {
					close(pressed)
					return
				}
			}
		}()
		return pressed, nil
	}
	return nil, fmt.Errorf("power button: no input device named \"Power Button\" (are the button and evdev modules loaded?)")
}
