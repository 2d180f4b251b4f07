package hyperv

import (
	"fmt"
	"strings"
)

// A script is the prelude, minik's values as assignments, a fixed body
// that sets $result, and the JSON answer: the body never has a value
// spliced into it, so quoting happens in one place (Quote).
//
// PowerShell reading a script from standard input (-Command -) runs it
// statement by statement as an interactive prompt would, where an empty
// line ends a multi-line statement. So everything but the first lines is
// one try/catch statement with no empty line inside, and an empty line
// ends the script.

const prelude = `$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
    function Stop-Minik([string]$Id, [System.Management.Automation.ErrorCategory]$Category, [string]$Message, [string]$Target) {
        throw [System.Management.Automation.ErrorRecord]::new([System.Exception]::new($Message), $Id, $Category, $Target)
    }
`

// hyperVPrelude loads the Hyper-V module, or fails with minik's ID for a
// missing one, and defines how minik's VMs and switches are recognised:
// by the JSON labels in their Notes. Lookups list and compare names
// rather than pass -Name: that takes wildcards, and with -ErrorAction
// SilentlyContinue it would hide an access denied as "not found".
const hyperVPrelude = `    if (-not (Get-Module -ListAvailable -Name Hyper-V)) {
        Stop-Minik 'MinikHyperVModuleMissing' NotInstalled 'the Hyper-V PowerShell module is not installed' 'Hyper-V'
    }
    Import-Module Hyper-V
    function Test-MinikLabels([string]$Notes, [string]$Cluster, [string]$Kind) {
        if (-not $Notes) { return $false }
        try { $l = ConvertFrom-Json -InputObject $Notes } catch { return $false }
        return ($l.'dev.minik.cluster' -ceq $Cluster) -and ($l.'dev.minik.kind' -ceq $Kind)
    }
    function Find-MinikVM([string]$Name, [string]$Notes) {
        Hyper-V\Get-VM | Where-Object { $_.Name -eq $Name -and $_.Notes -ceq $Notes } | Select-Object -First 1
    }
`

const epilogue = `    ConvertTo-Json -Compress -Depth 6 -InputObject @{ result = $result }
} catch {
    $e = $_
    ConvertTo-Json -Compress -Depth 3 -InputObject @{ error = @{
        category = [string]$e.CategoryInfo.Category
        fullyQualifiedErrorId = [string]$e.FullyQualifiedErrorId
        exception = $e.Exception.GetType().FullName
        message = [string]$e.Exception.Message
        target = [string]$e.TargetObject
    } }
}

`

// assign is one of a script's values: a PowerShell variable and the
// expression that sets it (Quote or quoteInt made).
type assign struct{ name, expr string }

func str(name, v string) assign { return assign{name, Quote(v)} }

func num[T ~int | ~int64 | ~uint | ~uint64](name string, v T) assign {
	return assign{name, quoteInt(v)}
}

func build(name string, hyperV bool, vars []assign, body string) Script {
	var b strings.Builder
	fmt.Fprintf(&b, "# minik: %s\n", name)
	b.WriteString(prelude)
	if hyperV {
		b.WriteString(hyperVPrelude)
	}
	for _, v := range vars {
		fmt.Fprintf(&b, "    $%s = %s\n", v.name, v.expr)
	}
	b.WriteString(body)
	b.WriteString(epilogue)
	return Script{Name: name, Text: b.String()}
}

// HealthScript reports what the driver needs: the Hyper-V module, the
// Virtual Machine Management service (there when the Hyper-V feature is
// on) and the user's rights.
func HealthScript() Script {
	return build("health", false, nil, `    $principal = [System.Security.Principal.WindowsPrincipal]::new([System.Security.Principal.WindowsIdentity]::GetCurrent())
    $vmms = Get-Service -Name vmms -ErrorAction SilentlyContinue
    $service = ''
    if ($vmms) { $service = [string]$vmms.Status }
    $result = @{
        administrator = $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)
        hyperVAdministrator = $principal.IsInRole([System.Security.Principal.SecurityIdentifier]::new('S-1-5-32-578'))
        module = [bool](Get-Module -ListAvailable -Name Hyper-V)
        service = $service
    }
`)
}

// SwitchSpec is a cluster's Internal switch and the host's address on it.
type SwitchSpec struct {
	Cluster, Name string
	// Notes are the switch's labels (see notes).
	Notes string
	// HostIP and PrefixLength: the host's address on the switch.
	HostIP       string
	PrefixLength int
}

// EnsureSwitchScript makes the cluster's Internal switch if it is not
// there, and puts the host's address on the switch's host adapter if it
// is not there; it fails on a switch of that name of another type.
func EnsureSwitchScript(s SwitchSpec) Script {
	return build("ensure-switch", true, []assign{
		str("switchName", s.Name), str("notes", s.Notes), str("hostIP", s.HostIP), num("prefixLength", s.PrefixLength),
	}, `    $created = $false
    $sw = Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq $switchName } | Select-Object -First 1
    if (-not $sw) {
        $sw = Hyper-V\New-VMSwitch -Name $switchName -SwitchType Internal -Notes $notes
        $created = $true
    } elseif ([string]$sw.SwitchType -ne 'Internal') {
        Stop-Minik 'MinikSwitchNotInternal' InvalidType ('the switch ' + $switchName + ' is ' + [string]$sw.SwitchType + ', not Internal') $switchName
    }
    $vnic = Hyper-V\Get-VMNetworkAdapter -ManagementOS | Where-Object { $_.SwitchName -eq $switchName } | Select-Object -First 1
    $adapter = $null
    if ($vnic) { $adapter = Get-NetAdapter | Where-Object { $_.DeviceID -eq $vnic.DeviceId } | Select-Object -First 1 }
    if (-not $adapter) { $adapter = Get-NetAdapter | Where-Object { $_.Name -eq ('vEthernet (' + $switchName + ')') } | Select-Object -First 1 }
    if (-not $adapter) {
        Stop-Minik 'MinikHostAdapterMissing' ObjectNotFound ('the switch ' + $switchName + ' has no host network adapter') $switchName
    }
    $have = @(Get-NetIPAddress -InterfaceIndex $adapter.ifIndex -AddressFamily IPv4 -ErrorAction SilentlyContinue | Where-Object { $_.IPAddress -eq $hostIP })
    if ($have.Count -eq 0) {
        New-NetIPAddress -InterfaceIndex $adapter.ifIndex -IPAddress $hostIP -PrefixLength $prefixLength | Out-Null
    }
    $result = @{ name = $sw.Name; id = [string]$sw.Id; created = $created; interfaceIndex = $adapter.ifIndex }
`)
}

// VMSpec is one node's VM.
type VMSpec struct {
	Name string
	// Notes are the VM's labels (see notes): how minik finds it again.
	Notes string
	// Switch is the cluster's switch; MAC the node's static address on
	// it (12 hex digits).
	Switch, MAC string
	// Dir holds the VM's configuration and BootDisk, the VHDX that
	// SourceVHD (the fixed VHD minik wrote) is converted to.
	Dir, SourceVHD, BootDisk string
	// DataDisk is the node's state across stop and start: a dynamic
	// VHDX of DataDiskGiB, made when missing, kept when there.
	DataDisk        string
	DataDiskGiB     uint
	MemoryMiB, CPUs uint
	// ComPipe is the named pipe of the VM's first serial port (its console).
	ComPipe string
}

// CreateVMScript makes a Generation 2 VM with Secure Boot off, static
// memory, the boot disk first in the boot order, the data disk, one network adapter on
// the cluster's switch with a static MAC, and COM1 on a named pipe. A VM
// of that name with minik's notes is left as it is; one without them is
// an error (MinikVMNameInUse), as is a missing switch (MinikSwitchMissing).
// A VM half made is removed again.
func CreateVMScript(s VMSpec) Script {
	return build("create-vm", true, []assign{
		str("name", s.Name), str("notes", s.Notes), str("switchName", s.Switch), str("mac", s.MAC),
		str("vmDir", s.Dir), str("sourceVhd", s.SourceVHD), str("bootDisk", s.BootDisk),
		str("dataDisk", s.DataDisk), num("dataBytes", uint64(s.DataDiskGiB)<<30),
		num("memoryBytes", uint64(s.MemoryMiB)<<20), num("cpus", s.CPUs), str("comPipe", s.ComPipe),
	}, `    $existing = @(Hyper-V\Get-VM | Where-Object { $_.Name -eq $name })
    $mine = @($existing | Where-Object { $_.Notes -ceq $notes })
    if ($mine.Count -gt 0) {
        $result = @{ name = $mine[0].Name; id = [string]$mine[0].Id; created = $false }
    } elseif ($existing.Count -gt 0) {
        Stop-Minik 'MinikVMNameInUse' ResourceExists ('a VM named ' + $name + ' exists and minik did not make it') $name
    } else {
        if (-not (Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq $switchName })) {
            Stop-Minik 'MinikSwitchMissing' ObjectNotFound ('there is no virtual switch ' + $switchName) $switchName
        }
        New-Item -ItemType Directory -Force -Path $vmDir | Out-Null
        $vm = $null
        $newData = $false
        try {
            if (Test-Path -LiteralPath $bootDisk) { Remove-Item -LiteralPath $bootDisk -Force }
            Hyper-V\Convert-VHD -Path $sourceVhd -DestinationPath $bootDisk -VHDType Dynamic
            $vm = Hyper-V\New-VM -Name $name -Generation 2 -MemoryStartupBytes $memoryBytes -NoVHD -SwitchName $switchName -Path $vmDir
            Hyper-V\Set-VM -VM $vm -ProcessorCount $cpus -StaticMemory -AutomaticCheckpointsEnabled $false -AutomaticStartAction Nothing -AutomaticStopAction ShutDown -Notes $notes
            Hyper-V\Set-VMFirmware -VM $vm -EnableSecureBoot Off
            $disk = Hyper-V\Add-VMHardDiskDrive -VM $vm -Path $bootDisk -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 0 -Passthru
            Hyper-V\Set-VMFirmware -VM $vm -FirstBootDevice $disk
            if (-not (Test-Path -LiteralPath $dataDisk)) {
                Hyper-V\New-VHD -Path $dataDisk -SizeBytes $dataBytes -Dynamic | Out-Null
                $newData = $true
            }
            Hyper-V\Add-VMHardDiskDrive -VM $vm -Path $dataDisk -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 1
            Hyper-V\Set-VMNetworkAdapter -VM $vm -StaticMacAddress $mac
            Hyper-V\Set-VMComPort -VM $vm -Number 1 -Path $comPipe
        } catch {
            if ($vm) { Hyper-V\Remove-VM -VM $vm -Force }
            if (Test-Path -LiteralPath $bootDisk) { Remove-Item -LiteralPath $bootDisk -Force }
            if ($newData -and (Test-Path -LiteralPath $dataDisk)) { Remove-Item -LiteralPath $dataDisk -Force }
            throw
        }
        Remove-Item -LiteralPath $sourceVhd -Force
        $result = @{ name = $vm.Name; id = [string]$vm.Id; created = $true }
    }
`)
}

// VMStateScript reports whether minik's VM of that name exists and its state.
func VMStateScript(name, notes string) Script {
	return build("vm-state", true, []assign{str("name", name), str("notes", notes)}, `    $vm = Find-MinikVM $name $notes
    if ($vm) {
        $result = @{ exists = $true; state = [string]$vm.State }
    } else {
        $result = @{ exists = $false; state = '' }
    }
`)
}

// StartVMScript starts (or resumes) minik's VM; a running one is left
// alone. A VM that is off first gets a new boot disk when sourceVHD (the
// boot disk of this start, with this start's config and certificates)
// is there: the old one is detached, sourceVHD converted to bootDisk and
// attached again, so that Hyper-V grants the VM access to the new file.
func StartVMScript(name, notes, sourceVHD, bootDisk string) Script {
	return build("start-vm", true, []assign{str("name", name), str("notes", notes), str("sourceVhd", sourceVHD), str("bootDisk", bootDisk)}, `    $vm = Find-MinikVM $name $notes
    if (-not $vm) {
        Stop-Minik 'MinikVMMissing' ObjectNotFound ('minik has no VM named ' + $name) $name
    }
    if ([string]$vm.State -eq 'Paused') {
        Hyper-V\Resume-VM -VM $vm
    } elseif ([string]$vm.State -ne 'Running') {
        if ([string]$vm.State -eq 'Off' -and $sourceVhd -ne '' -and (Test-Path -LiteralPath $sourceVhd)) {
            foreach ($old in @(Hyper-V\Get-VMHardDiskDrive -VM $vm | Where-Object { $_.Path -eq $bootDisk })) {
                Hyper-V\Remove-VMHardDiskDrive -VMHardDiskDrive $old
            }
            if (Test-Path -LiteralPath $bootDisk) { Remove-Item -LiteralPath $bootDisk -Force }
            Hyper-V\Convert-VHD -Path $sourceVhd -DestinationPath $bootDisk -VHDType Dynamic
            $disk = Hyper-V\Add-VMHardDiskDrive -VM $vm -Path $bootDisk -ControllerType SCSI -ControllerNumber 0 -ControllerLocation 0 -Passthru
            Hyper-V\Set-VMFirmware -VM $vm -FirstBootDevice $disk
            Remove-Item -LiteralPath $sourceVhd -Force
        }
        Hyper-V\Start-VM -VM $vm
    }
    $result = @{ name = $vm.Name; state = [string](Hyper-V\Get-VM -Id $vm.Id).State }
`)
}

// StopVMScript shuts minik's VM down through the guest's shutdown
// service, or turns it off when the guest does not answer; an Off or
// Saved VM, or none, is left alone.
func StopVMScript(name, notes string) Script {
	return build("stop-vm", true, []assign{str("name", name), str("notes", notes)}, `    $vm = Find-MinikVM $name $notes
    if (-not $vm) {
        $result = @{ name = $name; state = '' }
    } else {
        if (@('Off', 'Saved') -notcontains [string]$vm.State) {
            try { Hyper-V\Stop-VM -VM $vm -Force } catch { Hyper-V\Stop-VM -VM $vm -TurnOff -Force }
        }
        $result = @{ name = $vm.Name; state = [string](Hyper-V\Get-VM -Id $vm.Id).State }
    }
`)
}

// DeleteVMScript turns minik's VM off and removes it, its disks and its
// folder; then, when no VM of the cluster is left, the cluster's switch
// (its host adapter and address go with it). No VM is not an error.
func DeleteVMScript(cluster, name, notes, vmDir, switchName string) Script {
	return build("delete-vm", true, []assign{
		str("cluster", cluster), str("name", name), str("notes", notes), str("vmDir", vmDir), str("switchName", switchName),
	}, `    $vm = Find-MinikVM $name $notes
    if ($vm) {
        if (@('Off', 'Saved') -notcontains [string]$vm.State) { Hyper-V\Stop-VM -VM $vm -TurnOff -Force }
        $disks = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | ForEach-Object { $_.Path })
        Hyper-V\Remove-VM -VM $vm -Force
        foreach ($d in $disks) {
            if ($d -and (Test-Path -LiteralPath $d)) { Remove-Item -LiteralPath $d -Force }
        }
    }
    if (Test-Path -LiteralPath $vmDir) { Remove-Item -LiteralPath $vmDir -Recurse -Force }
    $left = @(Hyper-V\Get-VM | Where-Object { Test-MinikLabels $_.Notes $cluster 'node' })
    $switchRemoved = $false
    if ($left.Count -eq 0) {
        $sw = @(Hyper-V\Get-VMSwitch | Where-Object { $_.Name -eq $switchName -and (Test-MinikLabels $_.Notes $cluster 'network') })
        foreach ($s in $sw) {
            Hyper-V\Remove-VMSwitch -VMSwitch $s -Force
            $switchRemoved = $true
        }
    }
    $result = @{ removed = [bool]$vm; nodesLeft = $left.Count; switchRemoved = $switchRemoved }
`)
}

// DeleteClusterScript removes every VM of the cluster (off, then with its
// disks) and the cluster's switches, whatever state they are in.
func DeleteClusterScript(cluster string) Script {
	return build("delete-cluster", true, []assign{str("cluster", cluster)}, `    $removed = @()
    foreach ($vm in @(Hyper-V\Get-VM | Where-Object { Test-MinikLabels $_.Notes $cluster 'node' })) {
        if (@('Off', 'Saved') -notcontains [string]$vm.State) { Hyper-V\Stop-VM -VM $vm -TurnOff -Force }
        $disks = @(Hyper-V\Get-VMHardDiskDrive -VM $vm | ForEach-Object { $_.Path })
        Hyper-V\Remove-VM -VM $vm -Force
        foreach ($d in $disks) {
            if ($d -and (Test-Path -LiteralPath $d)) { Remove-Item -LiteralPath $d -Force }
        }
        $removed += $vm.Name
    }
    $switches = @()
    foreach ($s in @(Hyper-V\Get-VMSwitch | Where-Object { Test-MinikLabels $_.Notes $cluster 'network' })) {
        Hyper-V\Remove-VMSwitch -VMSwitch $s -Force
        $switches += $s.Name
    }
    $result = @{ vms = $removed; switches = $switches }
`)
}

// ListVMsScript lists the VMs whose notes may be minik's labels; the
// driver parses the notes.
func ListVMsScript() Script {
	return build("list-vms", true, nil, `    $result = @(Hyper-V\Get-VM | Where-Object { $_.Notes -and $_.Notes.Contains('dev.minik.cluster') } | ForEach-Object {
        @{ name = $_.Name; id = [string]$_.Id; state = [string]$_.State; notes = $_.Notes }
    })
`)
}

// HostNetworksScript lists the host's IPv4 networks: its addresses with
// their prefixes and its routes (VPNs), less the default route.
func HostNetworksScript() Script {
	return build("host-networks", false, nil, `    $addresses = @(Get-NetIPAddress -AddressFamily IPv4 | ForEach-Object { [string]$_.IPAddress + '/' + [string]$_.PrefixLength })
    $routes = @(Get-NetRoute -AddressFamily IPv4 | Where-Object { $_.DestinationPrefix -ne '0.0.0.0/0' } | ForEach-Object { [string]$_.DestinationPrefix })
    $result = @($addresses + $routes | Sort-Object -Unique)
`)
}
