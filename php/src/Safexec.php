<?php

declare(strict_types=1);

namespace NppSecure\CacheClient;

use NppSecure\CacheClient\Exception\InvalidInputException;
use NppSecure\CacheClient\Exception\SafexecUnavailableException;
use NppSecure\CacheClient\Exception\ToolFailedException;

/**
 * Runs the setuid `safexec` wrapper with proc_open and an argument array: no shell ever parses a
 * command line, so no quoting bug and no injection is possible.
 *
 * The wrapper is checked before anything runs: an absolute path to a regular, executable file owned by
 * root with the setuid bit (without it safexec only runs tools as the PHP user, which can neither read
 * nginx's cache nor be stopped by `--kill`).
 */
final class Safexec
{
    /**
     * The environment every child gets (PHP-FPM's own environment is not passed on). Not
     * SAFEXEC_QUIET: it would also silence safexec's error messages, and stderr is ours alone.
     */
    private const ENV = [
        'PATH' => '/usr/sbin:/usr/bin:/sbin:/bin',
        'LANG' => 'C.UTF-8',
        'SAFEXEC_SAFE_CWD' => '1',
    ];

    /** @var string */
    private $path;
    /** @var string */
    private $setsid;

    /**
     * @param string $path   where safexec is installed (default /usr/bin/safexec)
     * @param bool   $requireSetuid refuse a safexec that is not root-owned and setuid (default true)
     * @param string $setsid util-linux `setsid`, which starts detached jobs in a session of their own
     * @throws SafexecUnavailableException
     */
    public function __construct(string $path = '/usr/bin/safexec', bool $requireSetuid = true, string $setsid = '/usr/bin/setsid')
    {
        if ($path === '' || $path[0] !== '/') {
            throw new SafexecUnavailableException(sprintf('safexec path %s is not absolute', Url::show($path)));
        }
        clearstatcache(true, $path);
        $st = @stat($path);
        if ($st === false) {
            throw new SafexecUnavailableException("safexec not found at $path");
        }
        if (($st['mode'] & 0170000) !== 0100000) {
            throw new SafexecUnavailableException("safexec at $path is not a regular file");
        }
        if (!is_executable($path)) {
            throw new SafexecUnavailableException("safexec at $path is not executable by this user");
        }
        if ($requireSetuid && ($st['uid'] !== 0 || ($st['mode'] & 04000) === 0)) {
            throw new SafexecUnavailableException(sprintf(
                'safexec at %s is not setuid root (owner uid %d, mode %04o): install it root:root 4755',
                $path,
                $st['uid'],
                $st['mode'] & 07777
            ));
        }
        $this->path = $path;
        $this->setsid = $setsid;
    }

    /** The wrapper's path. */
    public function path(): string
    {
        return $this->path;
    }

    /**
     * Runs `safexec ARGS...` to completion and returns its output. Throws only when it cannot run or
     * exceeds $timeout seconds; a non-zero exit is returned, not thrown.
     *
     * @param string[] $args
     * @throws ToolFailedException
     */
    public function run(array $args, float $timeout = 60.0, string $tool = 'safexec'): CommandResult
    {
        $argv = array_merge([$this->path], self::strings($args));
        $pipes = [];
        $proc = @proc_open($argv, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, '/', self::ENV);
        if (!is_resource($proc)) {
            throw new ToolFailedException($tool, -1, 'cannot start ' . $this->path);
        }
        $out = '';
        $err = '';
        stream_set_blocking($pipes[1], false);
        stream_set_blocking($pipes[2], false);
        $deadline = microtime(true) + $timeout;
        $open = [1 => $pipes[1], 2 => $pipes[2]];
        while ($open !== []) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                proc_terminate($proc, 15);
                foreach ($open as $p) {
                    fclose($p);
                }
                proc_close($proc);
                throw new ToolFailedException($tool, -1, sprintf('timed out after %.0f s', $timeout));
            }
            $read = array_values($open);
            $w = null;
            $e = null;
            $n = @stream_select($read, $w, $e, (int) $left, (int) (($left - (int) $left) * 1e6));
            if ($n === false) {
                continue; // EINTR
            }
            foreach ($read as $r) {
                $chunk = fread($r, 65536);
                $key = $r === $pipes[1] ? 1 : 2;
                if ($chunk === false || ($chunk === '' && feof($r))) {
                    fclose($r);
                    unset($open[$key]);
                    continue;
                }
                if ($key === 1) {
                    $out .= $chunk;
                } else {
                    $err .= $chunk;
                }
            }
        }
        $code = proc_close($proc);
        return new CommandResult($code, $out, $err);
    }

    /**
     * Starts `safexec nohup ARGS...` detached from this PHP process and returns the job's PID
     * (safexec and nohup exec in place, so it is the tool's PID).
     *
     * The job gets a session of its own (`setsid`, which does not fork here because a proc_open
     * child never leads a process group), ignores SIGHUP, reads /dev/null and writes to two files
     * this PHP user opens and owns: so neither the end of the request, nor a signal to PHP-FPM's
     * process group, nor the worker's exit stops it. safexec moves it into its own cgroup, out of
     * PHP-FPM's (systemd's restart kills only that one). A job that exits within $checkSeconds with
     * a non-zero status is reported as a ToolFailedException carrying its stderr message.
     *
     * @param string[] $args tool and its arguments, e.g. ['cache-preload', '--json', '--', URL]
     * @return array{pid:int,start_ticks:int|null,exited:bool} exited: finished (status 0) within the check
     * @throws ToolFailedException
     * @throws InvalidInputException
     */
    public function spawnDetached(array $args, string $stdoutFile, string $stderrFile, float $checkSeconds = 0.3): array
    {
        $argv = array_merge([$this->setsid, $this->path, 'nohup'], self::strings($args));
        $tool = $args[0] ?? 'safexec';
        $pipes = [];
        $proc = @proc_open($argv, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $stdoutFile, 'w'], 2 => ['file', $stderrFile, 'w']], $pipes, '/', self::ENV);
        if (!is_resource($proc)) {
            throw new ToolFailedException($tool, -1, "cannot start {$this->setsid} {$this->path} (or open $stdoutFile / $stderrFile)");
        }
        $status = proc_get_status($proc);
        $pid = (int) $status['pid'];
        $stat = (new ProcessInfo())->stat($pid);
        $startTicks = $stat === null ? null : $stat[1];
        $deadline = microtime(true) + $checkSeconds;
        while ($status['running'] && microtime(true) < $deadline) {
            usleep(20000);
            $status = proc_get_status($proc);
        }
        if (!$status['running']) {
            $code = (int) $status['exitcode'];
            if ($code !== 0) {
                $msg = (new CommandResult($code, '', (string) @file_get_contents($stderrFile)))->message();
                throw new ToolFailedException($tool, $code, $msg);
            }
            return ['pid' => $pid, 'start_ticks' => $startTicks, 'exited' => true];
        }
        // Leaving $proc to PHP: freeing it only polls the child (WNOHANG), it never waits for it.
        return ['pid' => $pid, 'start_ticks' => $startTicks, 'exited' => false];
    }

    /**
     * @param mixed[] $args
     * @return string[]
     * @throws InvalidInputException
     */
    private static function strings(array $args): array
    {
        $out = [];
        foreach ($args as $a) {
            if (!is_string($a)) {
                throw new InvalidInputException('command arguments must be strings');
            }
            if (strpos($a, "\0") !== false) {
                throw new InvalidInputException('command argument contains a NUL byte');
            }
            $out[] = $a;
        }
        return $out;
    }
}
