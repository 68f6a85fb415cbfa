package ui

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// This file is the screen's side of file transfers: incoming file offers
// (a notice like a chat request: they never take the keyboard, ctrl+r
// opens the oldest, and only then do a, s and d answer it), the "send a
// file" dialog and /send typed in the input (tab completes the path), the
// transfer lines with progress bars over the input of the open chat, the
// transfers list (ctrl+l) where any transfer can be cancelled, and the line
// a finished transfer leaves in the chat.

// fileOffers are the incoming file offers waiting for an answer.
type fileOffers struct {
	queue  []FileOfferView
	open   fileKey // the opened offer; zero: none
	saving bool    // "save in…": asking for the folder
	dir    textinput.Model
	err    string
	hint   string // what tab found
}

// fileKey names a file offer: the sender and the transfer.
type fileKey struct{ peer, id string }

func fileKeyOf(v FileOfferView) fileKey { return fileKey{peer: v.Peer, id: v.ID} }

func (f *fileOffers) isOpen() bool { return f.open != fileKey{} }

func (f *fileOffers) opened() (FileOfferView, bool) {
	for _, v := range f.queue {
		if f.isOpen() && fileKeyOf(v) == f.open {
			return v, true
		}
	}
	return FileOfferView{}, false
}

func (f *fileOffers) close() {
	f.open, f.saving, f.err = fileKey{}, false, ""
	f.dir.Blur()
}

func (f *fileOffers) remove(k fileKey) {
	f.queue = slices.DeleteFunc(f.queue, func(v FileOfferView) bool { return fileKeyOf(v) == k })
	if f.open == k {
		f.close()
	}
}

// newBar is the progress bar the transfer lines draw with: static (no
// animation, so no timer redraws the screen), in the accent colour of the
// screen's renderer.
func newBar(st *styles) progress.Model {
	accent := "#5A3FC0"
	if st.r.HasDarkBackground() {
		accent = "#A996FF"
	}
	return progress.New(progress.WithoutPercentage(), progress.WithFillCharacters('█', '░'),
		progress.WithSolidFill(accent), progress.WithColorProfile(st.r.ColorProfile()))
}

// SetDownloads sets the folder accepted files go to unless the person
// picks another.
func (s *Screen) SetDownloads(dir string) { s.downloads = sanitizeLine(dir) }

// ShowFileOffer queues an incoming file offer. It shows as a notice above
// the status line and never takes the keyboard; ctrl+r opens it once no
// chat request waits. A second ShowFileOffer for the same transfer
// updates it in place.
func (s *Screen) ShowFileOffer(v FileOfferView) {
	v.Peer, v.PeerName, v.ID, v.Name = sanitizeLine(v.Peer), sanitizeLine(v.PeerName), sanitizeLine(v.ID), sanitizeLine(v.Name)
	for i := range s.files.queue {
		if fileKeyOf(s.files.queue[i]) == fileKeyOf(v) {
			s.files.queue[i] = v
			return
		}
	}
	s.files.queue = append(s.files.queue, v)
	s.layoutInputs()
}

// HideFileOffer removes a file offer (answered, or withdrawn by its
// sender). If it was open, it closes and says why.
func (s *Screen) HideFileOffer(peer, id string) {
	k := fileKey{peer: peer, id: id}
	if v, open := s.files.opened(); open && fileKeyOf(v) == k {
		s.note = "The offer of " + v.Name + " was withdrawn."
	}
	s.files.remove(k)
	s.layoutInputs()
}

// SetTransfer shows an unfinished transfer (new, or changed).
func (s *Screen) SetTransfer(v TransferView) {
	v.Peer, v.PeerName, v.ID, v.Name = sanitizeLine(v.Peer), sanitizeLine(v.PeerName), sanitizeLine(v.ID), sanitizeLine(v.Name)
	for i := range s.xfers {
		if sameTransfer(s.xfers[i], v) {
			s.xfers[i] = v
			return
		}
	}
	s.xfers = append(s.xfers, v)
	s.layoutInputs()
}

func sameTransfer(a, b TransferView) bool {
	return a.Peer == b.Peer && a.ID == b.ID && a.Outgoing == b.Outgoing
}

// EndTransfer takes a transfer off the transfer lines and leaves words
// about how it ended in its chat (ok: it arrived).
func (s *Screen) EndTransfer(v TransferView, words string, ok bool) {
	s.xfers = slices.DeleteFunc(s.xfers, func(x TransferView) bool { return sameTransfer(x, v) })
	if s.dlg.kind == dlgTransfers {
		s.dlg.cursor = min(s.dlg.cursor, max(0, len(s.xfers)-1))
	}
	key := "file:" + v.ID + ":in"
	if v.Outgoing {
		key = "file:" + v.ID + ":out"
	}
	s.AppendMessage(v.Peer, MessageView{Key: key, Notice: true, Failed: !ok, Mine: v.Outgoing, Body: words, At: s.now()})
	s.layoutInputs()
}

// transfersOf lists the unfinished transfers with peer.
func (s *Screen) transfersOf(peer string) []TransferView {
	var out []TransferView
	for _, v := range s.xfers {
		if v.Peer == peer {
			out = append(out, v)
		}
	}
	return out
}

// maxTransferLines bounds the transfer lines over the input; more are
// counted on the last one (the transfers list has them all).
const maxTransferLines = 3

// transferLineCount is how many lines the open chat's transfers take.
func (s *Screen) transferLineCount() int {
	if s.openID == "" {
		return 0
	}
	return min(len(s.transfersOf(s.openID)), maxTransferLines)
}

// transferLines draws the open chat's unfinished transfers in w columns.
func (s *Screen) transferLines(w int) []string {
	xs := s.transfersOf(s.openID)
	n := min(len(xs), maxTransferLines)
	out := make([]string, 0, n)
	for i := range n {
		if i == n-1 && len(xs) > n {
			more := itoa(len(xs)-n+1) + " more transfers · ctrl+l lists them"
			out = append(out, fit(s.st.muted.Render(wordCut(more, w)), w))
			break
		}
		out = append(out, fit(s.transferLine(xs[i], w, true), w))
	}
	return out
}

// transferLine is one transfer in w columns: arrow, name, then a bar with
// the share done, rate and time left while it runs, or what it waits for.
// Parts that do not fit are left out, least useful first.
func (s *Screen) transferLine(v TransferView, w int, inChat bool) string {
	st := &s.st
	arrow := "↓ "
	if v.Outgoing {
		arrow = "↑ "
	}
	var waits string
	switch v.Phase {
	case TransferHashing:
		waits = "reading the file to offer it…"
	case TransferOffered:
		if v.Outgoing {
			waits = humanBytes(v.Size) + " · waiting for " + v.PeerName + " to accept"
		} else {
			waits = humanBytes(v.Size) + " · waiting for your answer (ctrl+r)"
		}
	case TransferPreparing:
		waits = humanBytes(v.Size) + " · making room for it…"
	}
	if !inChat {
		arrow += v.PeerName + " · "
	}
	nameW := max(4, min(ansi.StringWidth(v.Name), w/3))
	name := ansi.Truncate(v.Name, nameW, "…")
	head := arrow + st.name.Render(name)
	used := ansi.StringWidth(arrow) + ansi.StringWidth(name)
	if waits != "" {
		return head + st.muted.Render(" "+wordCut(waits, max(1, w-used-1)))
	}
	frac := 0.0
	if v.Size > 0 {
		frac = float64(min(v.Done, v.Size)) / float64(v.Size)
	} else {
		frac = 1
	}
	pct := itoa(int(frac*100)) + "%"
	details := []string{humanBytes(v.Done) + " of " + humanBytes(v.Size)}
	if v.Rate > 0 {
		details = append(details, humanBytes(uint64(v.Rate))+"/s", timeLeft(v.Size-min(v.Done, v.Size), v.Rate))
	}
	rest := w - used - 1 - len(pct) - 1
	barW := min(30, max(0, rest/3))
	if barW < 5 {
		barW = 0
	}
	// Details go from the front (the byte counts) when space is short:
	// rate and time left say more.
	var tail string
	for len(details) > 0 {
		tail = " · " + strings.Join(details, " · ")
		if ansi.StringWidth(tail) <= rest-barW-1 {
			break
		}
		details, tail = details[1:], ""
	}
	line := head + " "
	if barW > 0 {
		bar := s.bar
		bar.Width = barW
		line += bar.ViewAs(frac) + " "
	}
	return line + st.keyHint.Render(pct) + st.muted.Render(tail)
}

// fileOfferLine is the notice of the oldest waiting file offer.
func (s *Screen) fileOfferLine(w int) string {
	st := &s.st
	v := s.files.queue[0]
	parts := []statusPart{
		{forms: []string{"📎 " + v.PeerName + " offers " + v.Name + " (" + humanBytes(v.Size) + ")",
			"📎 " + v.PeerName + " offers " + v.Name, "📎 a file offer"}, style: st.warn, rank: 2},
		{forms: []string{"ctrl+r answer", "ctrl+r"}, style: st.keyHint, rank: 3},
	}
	if n := len(s.files.queue) - 1; n > 0 {
		parts = append(parts, statusPart{forms: []string{plural(n, "more waiting", "more waiting"), "+" + itoa(n)}, style: st.muted, rank: 1})
	}
	return fit(s.fitParts(parts, w, " · ", ""), w)
}

// openFileOffer opens the oldest file offer (ctrl+r with no chat request
// waiting).
func (s *Screen) openFileOffer() {
	s.files.close()
	s.files.open = fileKeyOf(s.files.queue[0])
}

// handleFileOfferKey answers the opened file offer; like a chat request's,
// its keys are single letters read only because the person opened it.
func (s *Screen) handleFileOfferKey(msg tea.KeyMsg) tea.Cmd {
	f := &s.files
	v, ok := f.opened()
	if !ok {
		f.close()
		return nil
	}
	k := &s.keys
	if f.saving {
		switch {
		case isText(msg):
			var cmd tea.Cmd
			f.dir, cmd = f.dir.Update(asText(msg))
			f.err = ""
			return cmd
		case keyMatch(msg, k.Back):
			f.saving, f.err = false, ""
			f.dir.Blur()
			return nil
		case keyMatch(msg, k.Complete):
			return completePathCmd(targetFolder, f.dir.Value(), true)
		case keyMatch(msg, k.Confirm):
			dir := strings.TrimSpace(f.dir.Value())
			if dir == "" {
				f.err = "Folder: type where to save the file."
				return nil
			}
			f.remove(fileKeyOf(v))
			s.acted()
			return emit(AcceptFileIntent{Peer: v.Peer, ID: v.ID, Dir: dir})
		case msg.Paste:
			return nil
		}
		var cmd tea.Cmd
		f.dir, cmd = f.dir.Update(msg)
		return cmd
	}
	switch {
	case keyMatch(msg, k.Accept):
		f.remove(fileKeyOf(v))
		s.acted()
		return emit(AcceptFileIntent{Peer: v.Peer, ID: v.ID, Dir: s.downloads})
	case keyMatch(msg, k.SaveIn):
		f.saving, f.err = true, ""
		f.dir.SetValue(s.downloads)
		f.dir.CursorEnd()
		return f.dir.Focus()
	case keyMatch(msg, k.Decline):
		f.remove(fileKeyOf(v))
		s.acted()
		return emit(DeclineFileIntent{Peer: v.Peer, ID: v.ID})
	case keyMatch(msg, k.Back):
		f.close() // it keeps waiting
	}
	return nil
}

// fileOfferView draws the opened file offer in inner width w.
func (s *Screen) fileOfferView(w, _ int) string {
	st := &s.st
	v, _ := s.files.opened()
	var b strings.Builder
	b.WriteString(st.modalTitle.Render("File offered") + "\n\n")
	b.WriteString(wrapText(st.modalTitle.Render(v.PeerName)+" wants to send you "+st.modalTitle.Render(v.Name)+" ("+humanBytes(v.Size)+").", w) + "\n")
	if s.files.saving {
		b.WriteString("\n" + s.files.dir.View() + "\n")
		if s.files.err != "" {
			b.WriteString(st.errLine.Render(wrapText(s.files.err, w)) + "\n")
		}
		if s.files.hint != "" {
			b.WriteString(st.muted.Render(wrapText(s.files.hint, w)) + "\n")
		}
		b.WriteString(hints(st, "enter", "accept", "tab", "complete", "esc", "back"))
		return b.String()
	}
	b.WriteString(wrapText("It will be saved in "+s.downloads+" (an existing file is never replaced).", w) + "\n\n")
	b.WriteString(hints(st, "a", "accept", "s", "folder", "d", "decline", "esc", "back"))
	if n := len(s.files.queue) - 1; n > 0 {
		b.WriteString("\n" + st.muted.Render(plural(n, "more file offer", "more file offers")+" waiting"))
	}
	return b.String()
}

// ---- sending ----

// openSendFile opens "send a file" for the open chat.
func (s *Screen) openSendFile() tea.Cmd {
	if s.openID == "" {
		return nil
	}
	cmd := s.openDialog(dlgSendFile)
	s.dlg.contactID = s.openID
	return cmd
}

// sendFileView draws the "send a file" dialog in inner width w.
func (s *Screen) sendFileView(w int) string {
	st := &s.st
	d := &s.dlg
	c, _ := s.contacts.find(d.contactID)
	name := c.Name
	if name == "" {
		name = shortID(d.contactID)
	}
	var b strings.Builder
	b.WriteString(st.modalTitle.Render("Send a file to "+ansi.Truncate(name, max(1, w-18), "…")) + "\n\n")
	b.WriteString(wrapText("It is offered to "+name+" and goes once they accept, straight to them, encrypted. /send PATH in the chat does the same.", w) + "\n\n")
	b.WriteString(d.fields[0].View() + "\n")
	if d.err != "" {
		b.WriteString(st.errLine.Render(wrapText(d.err, w)) + "\n")
	}
	if d.hint != "" {
		b.WriteString(st.muted.Render(wrapText(d.hint, w)) + "\n")
	}
	b.WriteString("\n" + hints(st, "enter", "send", "tab", "complete", "esc", "back"))
	return b.String()
}

// submitSendFile offers the file named in the dialog.
func (s *Screen) submitSendFile() tea.Cmd {
	d := &s.dlg
	path := strings.TrimSpace(d.fields[0].Value())
	if path == "" {
		d.err = "File: type the path of the file to send (tab completes)."
		return nil
	}
	peer := d.contactID
	s.acted()
	s.closeDialog()
	return emit(SendFileIntent{ContactID: peer, Path: path})
}

// sendCommand is what typed in the input offers a file instead of
// sending a message.
const sendCommand = "/send"

// fileCommand reads "/send PATH" from the input: ok says the text is the
// command (path may be empty: then the dialog opens). "//send" sends the
// text "/send…" as a message.
func fileCommand(text string) (path string, ok bool) {
	rest, found := strings.CutPrefix(text, sendCommand)
	if !found || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// ---- path completion ----

// Completion targets: which field a completion is for.
const (
	targetInput  = "input"  // /send PATH in the chat input
	targetDialog = "dialog" // the "send a file" dialog
	targetFolder = "folder" // "save in…" of an opened file offer
)

// completionMsg is a completed path: applied if the field still holds
// typed (the person may have typed on meanwhile).
type completionMsg struct {
	target  string
	typed   string
	value   string
	choices []string
}

// completePathCmd completes typed (a path, ~ for the home folder) in a
// Cmd: reading a folder is I/O, which Update never does.
func completePathCmd(target, typed string, dirsOnly bool) tea.Cmd {
	return func() tea.Msg {
		value, choices := completePath(typed, dirsOnly)
		return completionMsg{target: target, typed: typed, value: value, choices: choices}
	}
}

// maxChoices bounds the names a completion lists.
const maxChoices = 12

// completePath extends typed by what every matching name in its folder
// shares, and lists the names when more than one matches. A folder gets
// a trailing separator; names starting with a dot show only when typed.
func completePath(typed string, dirsOnly bool) (string, []string) {
	if typed == "~" {
		return "~" + string(filepath.Separator), nil
	}
	i := strings.LastIndexAny(typed, "/"+string(filepath.Separator))
	dirTyped, base := typed[:i+1], typed[i+1:]
	dir := expandHome(dirTyped)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return typed, nil
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, base) || (strings.HasPrefix(n, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
				isDir = fi.IsDir()
			}
		}
		if isDir {
			n += string(filepath.Separator)
		} else if dirsOnly {
			continue
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return typed, nil
	}
	sort.Strings(names)
	common := names[0]
	for _, n := range names[1:] {
		j := 0
		for j < len(common) && j < len(n) && common[j] == n[j] {
			j++
		}
		common = common[:j]
	}
	if len(names) == 1 {
		return dirTyped + common, nil
	}
	if len(names) > maxChoices {
		names = append(names[:maxChoices], "…")
	}
	return dirTyped + common, names
}

// applyCompletion puts a completed path into the field it was made for.
func (s *Screen) applyCompletion(c completionMsg) {
	hint := ""
	if len(c.choices) > 0 {
		hint = "tab: " + strings.Join(c.choices, "  ")
	} else if c.value == c.typed {
		hint = "nothing there starts with that"
	}
	switch c.target {
	case targetDialog:
		d := &s.dlg
		if d.kind != dlgSendFile || d.fields[0].Value() != c.typed {
			return
		}
		d.fields[0].SetValue(c.value)
		d.fields[0].CursorEnd()
		d.err, d.hint = "", sanitizeLine(hint)
	case targetFolder:
		f := &s.files
		if !f.saving || f.dir.Value() != c.typed {
			return
		}
		f.dir.SetValue(c.value)
		f.dir.CursorEnd()
		f.err, f.hint = "", sanitizeLine(hint)
	case targetInput:
		if s.input.Value() != sendCommand+" "+c.typed {
			return
		}
		s.input.SetValue(sendCommand + " " + c.value)
		if hint != "" {
			s.note = sanitizeLine(hint)
		}
	}
	s.layoutInputs()
}

// ---- the transfers list (ctrl+l) ----

// transfersView draws every unfinished transfer, the highlighted one
// cancellable, in inner width w and height h.
func (s *Screen) transfersView(w, h int) string {
	st := &s.st
	out := []string{st.modalTitle.Render("File transfers"), ""}
	if len(s.xfers) == 0 {
		out = append(out, strings.Split(wrapText("No file transfers are running. In a chat, ctrl+o (or /send PATH) sends a file.", w), "\n")...)
		out = append(out, "", hints(st, "esc", "back"))
		return strings.Join(out, "\n")
	}
	rows := max(1, h-4)
	first := max(0, min(s.dlg.cursor-rows+1, len(s.xfers)-rows))
	for i := first; i < len(s.xfers) && i < first+rows; i++ {
		marker := "  "
		if i == s.dlg.cursor {
			marker = st.selected.Render("› ")
		}
		out = append(out, marker+s.transferLine(s.xfers[i], w-2, false))
	}
	out = append(out, "", hints(st, "x", "cancel", "↑/↓", "move", "esc", "back"))
	return strings.Join(out, "\n")
}

// handleTransfersKey moves in the transfers list and cancels.
func (s *Screen) handleTransfersKey(msg tea.KeyMsg) tea.Cmd {
	d := &s.dlg
	k := &s.keys
	switch {
	case keyMatch(msg, k.Up):
		d.cursor = max(0, d.cursor-1)
	case keyMatch(msg, k.Down):
		d.cursor = min(max(0, len(s.xfers)-1), d.cursor+1)
	case keyMatch(msg, k.CancelFile) && d.cursor < len(s.xfers):
		v := s.xfers[d.cursor]
		s.note = "Cancelling " + v.Name + "."
		return emit(CancelFileIntent{Peer: v.Peer, ID: v.ID})
	case keyMatch(msg, k.Back), keyMatch(msg, k.Transfers):
		s.closeDialog()
	}
	return nil
}
