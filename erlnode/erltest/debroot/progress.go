// Progress lines on stderr, shown live while slow work (building a root) runs.

package debroot

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// progressMu keeps lines from concurrent builders whole.
var progressMu sync.Mutex

// progressf writes one line to os.Stderr. t.Logf output only appears when a
// test finishes, which is useless for a build that takes minutes.
func progressf(format string, args ...any) {
	progressMu.Lock()
	defer progressMu.Unlock()
	fmt.Fprintf(os.Stderr, "erltest %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
