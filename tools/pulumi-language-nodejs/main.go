// Command pulumi-language-nodejs is a small Node.js language host for the Pulumi CLI.
//
// The Pulumi engine starts a language host as a plugin: it runs this binary with optional logging and
// tracing flags followed by the engine's gRPC address, reads the port this host listens on from the first
// line of its stdout, and then calls the pulumirpc.LanguageRuntime service on that port. Everything the host
// (or the Node.js process it starts) writes to stdout or stderr afterwards is shown to the user by the
// engine, so the program's console output simply goes to our inherited stdout and stderr.
//
// This host only covers what this project needs: running a (TypeScript) program with the run script shipped
// in the program's own @pulumi/pulumi package, and reporting no required plugins (the project uses dynamic
// providers, which the engine runs through pulumi-resource-pulumi-nodejs). It is written for this repository
// because the upstream host is not available from the Go module proxy used here.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// version is reported to the engine; setup-pulumi.sh overrides it with -ldflags "-X main.version=...".
var version = "3.248.0"

// bailExitCode is the exit code the @pulumi/pulumi run script uses after it has already reported the
// program's error to the engine; the engine is then told to stop without printing anything further.
const bailExitCode = 32

func main() {
	mark("start")
	engineAddr, tracing := parseArgs(os.Args[1:])

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: listen: %v\n", err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(400 << 20))
	host := &languageHost{engineAddr: engineAddr, tracing: tracing}
	pulumirpc.RegisterLanguageRuntimeServer(srv, host)

	// The engine reads exactly one line holding the port before it dials us.
	fmt.Printf("%d\n", lis.Addr().(*net.TCPAddr).Port)

	go exitWithParent(srv, host)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		host.stopChildren(sig)
		srv.Stop()
	}()

	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: serve: %v\n", err)
		os.Exit(1)
	}
}

// parseArgs takes the engine address (the last positional argument) and a tracing endpoint, and ignores every
// other flag the engine or a user may pass (-v=9, --logtostderr, -root=..., ...).
func parseArgs(args []string) (engineAddr, tracing string) {
	takesValue := map[string]bool{"tracing": true, "root": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				engineAddr = args[len(args)-1]
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			engineAddr = a
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		if !hasValue && i+1 < len(args) && (takesValue[name] || (name == "v" && isDigits(args[i+1]))) {
			value = args[i+1]
			i++
		}
		if name == "tracing" {
			tracing = value
		}
	}
	return engineAddr, tracing
}

// mark appends a timing event to the file named by K8SBM_TIMING (the benchmark's breakdown, see
// bench/testbed-stack.ts); nothing happens without it.
func mark(ev string) {
	file := os.Getenv("K8SBM_TIMING")
	if file == "" {
		return
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "{\"t\":%.3f,\"pid\":%d,\"proc\":\"langhost\",\"ev\":%q}\n",
		float64(time.Now().UnixMicro())/1000, os.Getpid(), ev)
}

func isDigits(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// exitWithParent stops the host if the engine that started it goes away without killing it.
func exitWithParent(srv *grpc.Server, host *languageHost) {
	parent := os.Getppid()
	for {
		time.Sleep(time.Second)
		if os.Getppid() != parent {
			host.stopChildren(syscall.SIGTERM)
			srv.Stop()
			return
		}
	}
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	mu         sync.Mutex
	engineAddr string
	tracing    string
	children   map[*exec.Cmd]struct{}
}

func (h *languageHost) track(cmd *exec.Cmd, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.children == nil {
		h.children = map[*exec.Cmd]struct{}{}
	}
	if add {
		h.children[cmd] = struct{}{}
	} else {
		delete(h.children, cmd)
	}
}

func (h *languageHost) stopChildren(sig os.Signal) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cmd := range h.children {
		if cmd.Process != nil {
			_ = cmd.Process.Signal(sig)
		}
	}
}

func (h *languageHost) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.mu.Lock()
		h.engineAddr = req.GetEngineAddress()
		h.mu.Unlock()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPlugins reports nothing: resource plugins are loaded on demand when the program registers a
// resource, and dynamic providers need no plugin download.
func (h *languageHost) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *languageHost) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *languageHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// programPaths works out the project root, the program directory and the entry point (relative to the program
// directory) from a request's ProgramInfo, falling back to the deprecated plain fields.
func programPaths(info *pulumirpc.ProgramInfo, pwd, program string) (root, dir, entry string) {
	root, dir, entry = info.GetRootDirectory(), info.GetProgramDirectory(), info.GetEntryPoint()
	if dir == "" {
		dir = pwd
	}
	if root == "" {
		root = dir
	}
	if entry == "" {
		entry = program
	}
	if entry == "" {
		entry = "."
	}
	return root, dir, entry
}

// runOptions are the `runtime.options` of Pulumi.yaml that this host understands.
type runOptions struct {
	nodeArgs   []string
	typescript bool
	tsconfig   string
}

func parseOptions(s *structpb.Struct) runOptions {
	opts := runOptions{typescript: true}
	if s == nil {
		return opts
	}
	m := s.AsMap()
	if v, ok := m["nodeargs"].(string); ok {
		opts.nodeArgs = strings.Fields(v)
	}
	switch v := m["typescript"].(type) {
	case bool:
		opts.typescript = v
	case string:
		opts.typescript = v != "false"
	}
	if v, ok := m["tsconfig"].(string); ok {
		opts.tsconfig = v
	}
	return opts
}

// findUp looks for rel in dir and each of its parents, the way Node.js resolves node_modules.
func findUp(dir, rel string) (string, bool) {
	dir, _ = filepath.Abs(dir)
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	mark("run")
	pwd := req.GetPwd()
	root, dir, entry := programPaths(req.GetInfo(), pwd, req.GetProgram()) //nolint:staticcheck // fallback only
	if pwd == "" {
		pwd = root
	}
	opts := parseOptions(req.GetInfo().GetOptions())

	runScript, ok := findUp(dir, filepath.Join("node_modules", "@pulumi", "pulumi", "cmd", "run"))
	if !ok {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf(
			"could not find node_modules/@pulumi/pulumi in %s or any parent directory; run `npm install` first", dir)}, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find `node` on PATH: " + err.Error()}, nil
	}

	// The run script changes into --pwd and resolves a relative program path from there; "." means "use the
	// package.json entry point", which only applies when the program directory is the working directory.
	program := entry
	if filepath.Clean(dir) != filepath.Clean(pwd) || filepath.IsAbs(entry) {
		program = filepath.Join(dir, entry)
		if filepath.IsAbs(entry) {
			program = entry
		}
	}

	h.mu.Lock()
	engineAddr, tracing := h.engineAddr, h.tracing
	h.mu.Unlock()

	args := append([]string{}, opts.nodeArgs...)
	args = append(args, runScript,
		"--monitor="+req.GetMonitorAddress(),
		"--project="+req.GetProject(),
		"--stack="+req.GetStack(),
		"--pwd="+pwd,
		"--root-directory="+root,
		"--parallel="+strconv.Itoa(int(req.GetParallel())),
	)
	if engineAddr != "" {
		args = append(args, "--engine="+engineAddr)
	}
	if req.GetOrganization() != "" {
		args = append(args, "--organization="+req.GetOrganization())
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if tracing != "" {
		args = append(args, "--tracing="+tracing)
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	config := req.GetConfig()
	if config == nil {
		config = map[string]string{}
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding config: %v", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding secret config keys: %v", err)
	}

	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(configJSON),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON),
		"PULUMI_NODEJS_TYPESCRIPT="+strconv.FormatBool(opts.typescript),
	)
	if opts.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+opts.tsconfig)
	}
	if req.GetAttachDebugger() {
		fmt.Fprintln(os.Stderr, "pulumi-language-nodejs: --attach-debugger is not supported by this language host; running normally")
	}

	cmd := exec.Command(node, args...)
	cmd.Dir = pwd
	cmd.Env = env
	// The engine turns our stdout/stderr into the program's output; the child writes to them directly.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("starting %s: %v", node, err)}, nil
	}
	mark("spawned")
	h.track(cmd, true)
	defer h.track(cmd, false)
	defer mark("exited")

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case waitErr = <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			waitErr = <-done
		}
	}
	return runResponse(waitErr), nil
}

func runResponse(waitErr error) *pulumirpc.RunResponse {
	if waitErr == nil {
		return &pulumirpc.RunResponse{}
	}
	var exitErr *exec.ExitError
	if !errors.As(waitErr, &exitErr) {
		return &pulumirpc.RunResponse{Error: waitErr.Error()}
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("the Node.js program was terminated by signal %v", ws.Signal())}
	}
	switch code := exitErr.ExitCode(); code {
	case bailExitCode:
		// The program's error has already been reported through the engine's log.
		return &pulumirpc.RunResponse{Bail: true}
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("the Node.js program exited with code %d", code)}
	}
}

// InstallDependencies installs node_modules only when they are missing (`npm ci` with a lock file, else
// `npm install`); otherwise it reports that there is nothing to do.
func (h *languageHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest, stream pulumirpc.LanguageRuntime_InstallDependenciesServer) error {
	_, dir, _ := programPaths(req.GetInfo(), req.GetDirectory(), "") //nolint:staticcheck // fallback only
	pkgJSON, ok := findUp(dir, "package.json")
	if !ok {
		return stream.Send(&pulumirpc.InstallDependenciesResponse{Stdout: []byte("no package.json found; nothing to install\n")})
	}
	pkgDir := filepath.Dir(pkgJSON)
	if _, err := os.Stat(filepath.Join(pkgDir, "node_modules", "@pulumi", "pulumi")); err == nil {
		return stream.Send(&pulumirpc.InstallDependenciesResponse{
			Stdout: []byte("node_modules already present in " + pkgDir + "; skipping install\n")})
	}
	npmArgs := []string{"install"}
	if _, err := os.Stat(filepath.Join(pkgDir, "package-lock.json")); err == nil {
		npmArgs = []string{"ci"}
	}
	cmd := exec.CommandContext(stream.Context(), "npm", npmArgs...)
	cmd.Dir = pkgDir
	var sendMu sync.Mutex
	cmd.Stdout = streamWriter{stream: stream, mu: &sendMu}
	cmd.Stderr = streamWriter{stream: stream, mu: &sendMu, stderr: true}
	if err := cmd.Run(); err != nil {
		return status.Errorf(codes.Internal, "npm %s in %s failed: %v", npmArgs[0], pkgDir, err)
	}
	return nil
}

type streamWriter struct {
	stream pulumirpc.LanguageRuntime_InstallDependenciesServer
	mu     *sync.Mutex
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	msg := &pulumirpc.InstallDependenciesResponse{}
	b := append([]byte(nil), p...)
	if w.stderr {
		msg.Stderr = b
	} else {
		msg.Stdout = b
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.stream.Send(msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *languageHost) About(ctx context.Context, _ *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "could not find `node` on PATH: %v", err)
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "node --version: %v", err)
	}
	return &pulumirpc.AboutResponse{
		Executable: node,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "v"),
		Metadata:   map[string]string{"languageHost": "k8s-baremetal pulumi-language-nodejs " + version},
	}, nil
}

// GetProgramDependencies lists the direct dependencies from package.json with the versions installed in
// node_modules (or the requested range when a package is not installed).
func (h *languageHost) GetProgramDependencies(_ context.Context, req *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	_, dir, _ := programPaths(req.GetInfo(), req.GetPwd(), req.GetProgram()) //nolint:staticcheck // fallback only
	pkgJSON, ok := findUp(dir, "package.json")
	if !ok {
		return &pulumirpc.GetProgramDependenciesResponse{}, nil
	}
	var pkg struct {
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := readJSON(pkgJSON, &pkg); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "reading %s: %v", pkgJSON, err)
	}
	names := make([]string, 0, len(pkg.Dependencies))
	for name := range pkg.Dependencies {
		names = append(names, name)
	}
	sort.Strings(names)
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, name := range names {
		v := pkg.Dependencies[name]
		var installed struct {
			Version string `json:"version"`
		}
		if p, ok := findUp(dir, filepath.Join("node_modules", name, "package.json")); ok {
			if readJSON(p, &installed) == nil && installed.Version != "" {
				v = installed.Version
			}
		}
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: name, Version: v})
	}
	return resp, nil
}

func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewDecoder(bufio.NewReader(f)).Decode(v)
}
